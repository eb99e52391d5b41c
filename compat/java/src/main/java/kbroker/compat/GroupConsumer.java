package kbroker.compat;

import java.io.FileWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A consumer group member for failure tests: {@code run group-consumer BOOTSTRAP TOPIC GROUP PROTOCOL
 * COUNT OUTPUT} reads from the committed offsets (earliest without), commits synchronously after
 * every poll, and writes each value it read to OUTPUT, one per line, until COUNT values were read in
 * this run or 60 s pass without one. PROTOCOL is the group.protocol (classic or consumer). A failed
 * commit (the coordinator moved) is logged and the next poll's commit covers it.
 */
final class GroupConsumer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], group = args[2], protocol = args[3], output = args[5];
        int count = Integer.parseInt(args[4]);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "20");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        int read = 0, failedCommits = 0;
        long lastRecord = System.currentTimeMillis();
        try (PrintWriter out = new PrintWriter(new FileWriter(output, StandardCharsets.UTF_8), true);
             KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p)) {
            consumer.subscribe(List.of(topic));
            while (read < count && System.currentTimeMillis() - lastRecord < 60000) {
                var records = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : records) {
                    out.println(new String(r.value(), StandardCharsets.UTF_8));
                    read++;
                    lastRecord = System.currentTimeMillis();
                }
                if (!records.isEmpty()) {
                    try {
                        consumer.commitSync(Duration.ofSeconds(30));
                    } catch (KafkaException e) {
                        failedCommits++;
                        System.err.println("commit failed: " + e);
                    }
                }
            }
        }
        System.out.println("{\"read\": " + read + ", \"failed_commits\": " + failedCommits + "}");
    }
}
