package kbroker.streams;

import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * A stateful exactly_once_v2 topology: input records carry "word:n" values under arbitrary keys;
 * they are re-keyed by word (through a repartition topic) and aggregated per word into "count:sum"
 * (a RocksDB store with a changelog topic), every update written to the output topic. With caching
 * off each input record yields exactly one output record, so a reader can check the per-word
 * sequence of updates for losses and duplicates.
 *
 * <p>Usage: {@code run --bootstrap B --app-id A --input T --output T --state-dir D [--threads N]}.
 * Prints "state RUNNING" etc. as the client's state changes and "restored N totals PARTITION" when a
 * store partition has been rebuilt from its changelog, on stdout; runs until killed or SIGTERM.
 */
public final class WordTotals {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        String input = null, output = null;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--bootstrap" -> props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, value);
                case "--app-id" -> props.put(StreamsConfig.APPLICATION_ID_CONFIG, value);
                case "--input" -> input = value;
                case "--output" -> output = value;
                case "--state-dir" -> props.put(StreamsConfig.STATE_DIR_CONFIG, value);
                case "--threads" -> props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        // records reach the log as they are processed, so a transaction is open with data most of the time
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 500);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);  // one output per input
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 1000);  // DeleteRecords within a run
        // a restarted instance's rebalance waits for the killed one's member to expire: not 45 s
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .map((key, line) -> {
                int colon = line.lastIndexOf(':');
                return KeyValue.pair(line.substring(0, colon), line.substring(colon + 1));
            })
            .groupByKey(Grouped.with("by-word", Serdes.String(), Serdes.String()))
            .aggregate(() -> "0:0", WordTotals::add,
                       Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("totals")
                           .withKeySerde(Serdes.String()).withValueSerde(Serdes.String()))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setStateListener((now, before) -> {
            System.out.println("state " + now);
            System.out.flush();
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) stopped.countDown();
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override public void onRestoreStart(TopicPartition partition, String store, long start, long end) {}
            @Override public void onBatchRestored(TopicPartition partition, String store, long end, long n) {}
            @Override public void onRestoreEnd(TopicPartition partition, String store, long restored) {
                System.out.println("restored " + restored + " " + store + " " + partition);
                System.out.flush();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(streams::close));
        streams.start();
        stopped.await();
        System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
    }

    /** "count:sum" + n */
    static String add(String word, String n, String total) {
        int colon = total.indexOf(':');
        long count = Long.parseLong(total.substring(0, colon)) + 1;
        long sum = Long.parseLong(total.substring(colon + 1)) + Long.parseLong(n);
        return count + ":" + sum;
    }
}
