package kbroker.compat;

import java.io.FileWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * An idempotent acks=all producer for failure tests: {@code run acking-producer BOOTSTRAP TOPIC NAME
 * SECONDS OUTPUT} sends unique values "NAME-n" for SECONDS, then flushes, and writes every value the
 * cluster acknowledged to OUTPUT, one per line (and "error VALUE CLASS" for each one it refused).
 */
final class AckingProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], name = args[2], output = args[4];
        long until = System.currentTimeMillis() + Long.parseLong(args[3]) * 1000;
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "180000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        AtomicLong acked = new AtomicLong();
        try (PrintWriter out = new PrintWriter(new FileWriter(output, StandardCharsets.UTF_8));
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            long n = 0;
            while (System.currentTimeMillis() < until) {
                String value = name + "-" + n++;
                producer.send(new ProducerRecord<>(topic, value.getBytes(StandardCharsets.UTF_8)), (md, e) -> {
                    synchronized (out) {
                        if (e == null) { out.println(value); acked.incrementAndGet(); }
                        else out.println("error " + value + " " + e.getClass().getSimpleName());
                    }
                });
                if (n % 50 == 0) Thread.sleep(10);
            }
            producer.flush();
        } catch (IOException e) {
            throw e;
        }
        System.out.println("{\"acknowledged\": " + acked.get() + "}");
    }
}
