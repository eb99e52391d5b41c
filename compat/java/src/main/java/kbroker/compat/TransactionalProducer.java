package kbroker.compat;

import java.io.FileWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A transactional producer for failure tests: {@code run transactional-producer BOOTSTRAP TOPIC
 * PARTITIONS TRANSACTIONAL_ID SECONDS OUTPUT} runs transactions of 20 values "ID-t-i" spread over every
 * partition for SECONDS. OUTPUT gets a line per value: "committed V" once its transaction's commit
 * returned, "aborted V" once its abort did, "unknown V" when neither could be told (the producer gave
 * up on the transaction). A commit that times out is retried, as the client requires.
 */
final class TransactionalProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], id = args[3], output = args[5];
        int partitions = Integer.parseInt(args[2]);
        long until = System.currentTimeMillis() + Long.parseLong(args[4]) * 1000;
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "2");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, "50");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        int committed = 0, aborted = 0, unknown = 0;
        try (PrintWriter out = new PrintWriter(new FileWriter(output, StandardCharsets.UTF_8), true);
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            for (long t = 0; System.currentTimeMillis() < until; t++) {
                List<String> values = new ArrayList<>();
                for (int i = 0; i < 20; i++) values.add(id + "-" + t + "-" + i);
                String outcome;
                try {
                    producer.beginTransaction();
                    for (int i = 0; i < values.size(); i++) {
                        producer.send(new ProducerRecord<>(topic, i % partitions, null,
                                values.get(i).getBytes(StandardCharsets.UTF_8)));
                    }
                    outcome = commit(producer) ? "committed" : "unknown";
                } catch (ProducerFencedException | OutOfOrderSequenceException | AuthorizationException e) {
                    for (String v : values) out.println("unknown " + v);
                    throw e;  // fatal for this producer
                } catch (KafkaException e) {
                    outcome = abort(producer) ? "aborted" : "unknown";
                }
                for (String v : values) out.println(outcome + " " + v);
                switch (outcome) {
                    case "committed" -> committed++;
                    case "aborted" -> aborted++;
                    default -> unknown++;
                }
                if (outcome.equals("unknown")) break;  // the producer cannot go on
            }
        }
        System.out.println("{\"committed\": " + committed + ", \"aborted\": " + aborted + ", \"unknown\": " + unknown + "}");
    }

    private static boolean commit(KafkaProducer<byte[], byte[]> producer) {
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                producer.commitTransaction();
                return true;
            } catch (TimeoutException e) {
                // retried: the outcome is decided by the coordinator, the client must ask again
            }
        }
        return false;
    }

    private static boolean abort(KafkaProducer<byte[], byte[]> producer) {
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                producer.abortTransaction();
                return true;
            } catch (TimeoutException e) {
                // retried, as for commit
            } catch (KafkaException e) {
                return false;
            }
        }
        return false;
    }
}
