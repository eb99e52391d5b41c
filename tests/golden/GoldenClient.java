// Java kafka-clients scenario for tests/golden/capture.py (run with the single-file source launcher:
//   java -cp <kafka jars> tests/golden/GoldenClient.java BOOTSTRAP TOPIC).
// Admin create/describe, an idempotent producer (gzip, keys, headers), a transactional producer, a
// classic-protocol consumer group and a KIP-848 ("consumer" protocol) consumer group.
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class GoldenClient {
    static void step(String name, Runnable r) {
        try {
            r.run();
            System.out.println("ok " + name);
        } catch (Exception e) {
            System.out.println("FAILED " + name + ": " + e);
        }
    }

    interface Body { void run() throws Exception; }

    static Runnable wrap(Body b) {
        return () -> { try { b.run(); } catch (Exception e) { throw new RuntimeException(e); } };
    }

    public static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];

        step("admin", wrap(() -> {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("client.id", "golden-java-admin");
            try (Admin admin = Admin.create(p)) {
                admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
                admin.describeTopics(List.of(topic)).allTopicNames().get();
                admin.describeCluster().nodes().get();
                admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, topic))).all().get();
                admin.listTopics().names().get();
            }
        }));

        step("producer", wrap(() -> {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("client.id", "golden-java-producer");
            p.put("compression.type", "gzip");
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                for (int i = 0; i < 6; i++) {
                    RecordHeaders h = new RecordHeaders();
                    h.add("trace", ("t" + i).getBytes());
                    producer.send(new ProducerRecord<>(topic, null, "key-" + i, "java value " + i, h)).get();
                }
            }
        }));

        step("transactional-producer", wrap(() -> {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("client.id", "golden-java-txn");
            p.put("transactional.id", "golden-java-txn");
            p.put("key.serializer", StringSerializer.class.getName());
            p.put("value.serializer", StringSerializer.class.getName());
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                producer.initTransactions();
                producer.beginTransaction();
                producer.send(new ProducerRecord<>(topic, "txn-key", "txn value"));
                producer.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(1)),
                        new ConsumerGroupMetadata("golden-java-txn-group"));
                producer.commitTransaction();
            }
        }));

        for (String protocol : new String[] {"classic", "consumer"}) {
            step("consumer-" + protocol, wrap(() -> {
                Properties p = new Properties();
                p.put("bootstrap.servers", bootstrap);
                p.put("client.id", "golden-java-consumer-" + protocol);
                p.put("group.id", "golden-java-" + protocol);
                p.put("group.protocol", protocol);
                p.put("auto.offset.reset", "earliest");
                p.put("enable.auto.commit", "false");
                p.put("key.deserializer", StringDeserializer.class.getName());
                p.put("value.deserializer", StringDeserializer.class.getName());
                try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
                    consumer.subscribe(List.of(topic));
                    int seen = 0;
                    long deadline = System.currentTimeMillis() + 20000;
                    while (seen < 7 && System.currentTimeMillis() < deadline) {
                        ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(500));
                        seen += recs.count();
                    }
                    consumer.commitSync();
                    System.out.println("consumed " + seen + " with " + protocol);
                }
            }));
        }

        step("admin-groups", wrap(() -> {
            Properties p = new Properties();
            p.put("bootstrap.servers", bootstrap);
            p.put("client.id", "golden-java-admin");
            try (Admin admin = Admin.create(p)) {
                admin.listGroups().all().get();
                admin.describeConsumerGroups(List.of("golden-java-classic", "golden-java-consumer")).all().get();
                admin.listConsumerGroupOffsets("golden-java-classic").partitionsToOffsetAndMetadata().get();
                admin.deleteConsumerGroups(List.of("golden-java-classic")).all().get();
            }
        }));
    }
}
