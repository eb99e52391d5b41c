package kbroker.compat;

import java.nio.charset.StandardCharsets;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Many updates per key and tombstones, for compaction stories: {@code run updates-producer BOOTSTRAP
 * TOPIC ROUNDS KEYS TOMBSTONE,TOMBSTONE...} sends "user-K" = "profile-K-vR" for every round R and key K,
 * then a null value for each listed key, idempotent with acks=all, and prints "KEY OFFSET VALUE|null"
 * per record as acknowledged, in send order.
 */
final class UpdatesProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1];
        int rounds = Integer.parseInt(args[2]), keys = Integer.parseInt(args[3]);
        String[] tombstones = args.length > 4 && !args[4].isEmpty() ? args[4].split(",") : new String[0];
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            java.util.List<java.util.concurrent.Future<RecordMetadata>> sent = new java.util.ArrayList<>();
            java.util.List<String> what = new java.util.ArrayList<>();
            for (int r = 0; r < rounds; r++) {
                for (int k = 0; k < keys; k++) {
                    String key = "user-" + k, value = "profile-" + k + "-v" + r;
                    sent.add(producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8),
                                                                value.getBytes(StandardCharsets.UTF_8))));
                    what.add(key + " %d " + value);
                }
            }
            for (String k : tombstones) {
                String key = "user-" + k;
                sent.add(producer.send(new ProducerRecord<>(topic, key.getBytes(StandardCharsets.UTF_8), null)));
                what.add(key + " %d null");
            }
            producer.flush();
            for (int i = 0; i < sent.size(); i++) {
                System.out.println(String.format(what.get(i), sent.get(i).get().offset()));
            }
        }
    }
}
