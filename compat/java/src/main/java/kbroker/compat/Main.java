package kbroker.compat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Kafka's Java client against a broker. Protocol (see compat/scenario.py):
 * {@code --list} | {@code --bootstrap B --prefix P [--only a,b]} -> JSON lines on stdout.
 */
public final class Main {
    interface Scenario { void run(Ctx ctx) throws Exception; }

    static final class Ctx {
        final String bootstrap, prefix;
        String scenario = "";
        Ctx(String b, String p) { bootstrap = b; prefix = p; }
        String topic(String suffix) {
            String t = prefix + "-" + scenario.replace('/', '-');
            return suffix.isEmpty() ? t : t + "-" + suffix;
        }
        String topic() { return topic(""); }
    }

    static final class Rec {
        final byte[] key, value; final List<Header> headers;
        Rec(String k, String v, Header... h) {
            key = k == null ? null : k.getBytes(StandardCharsets.UTF_8);
            value = v == null ? null : v.getBytes(StandardCharsets.UTF_8);
            headers = List.of(h);
        }
    }

    static Header hdr(String k, String v) {
        return new RecordHeader(k, v == null ? null : v.getBytes(StandardCharsets.UTF_8));
    }

    static final List<Rec> RECORDS = List.of(
        new Rec("k0", "v0", hdr("h1", "a")),
        new Rec(null, "null-key"),
        new Rec("tomb", null),
        new Rec("", "", hdr("empty", ""), hdr("nullv", null)),
        new Rec("k4", "v".repeat(1000), hdr("dup", "1"), hdr("dup", "2")));

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();
    static final Duration TIMEOUT = Duration.ofSeconds(20);

    static void check(boolean cond, String msg) { if (!cond) throw new AssertionError(msg); }
    static void eq(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected))
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }

    static Properties common(Ctx ctx) {
        Properties p = new Properties();
        p.put("bootstrap.servers", ctx.bootstrap);
        p.put("request.timeout.ms", "10000");
        p.put("default.api.timeout.ms", "15000");
        return p;
    }

    static KafkaProducer<byte[], byte[]> producer(Ctx ctx, Consumer<Properties> tweak) {
        Properties p = common(ctx);
        p.remove("default.api.timeout.ms");
        p.put("max.block.ms", "15000");
        p.put("delivery.timeout.ms", "20000");
        p.put("linger.ms", "5");
        tweak.accept(p);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static KafkaConsumer<byte[], byte[]> consumer(Ctx ctx, Consumer<Properties> tweak) {
        Properties p = common(ctx);
        p.put("auto.offset.reset", "earliest");
        p.put("enable.auto.commit", "false");
        tweak.accept(p);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static Admin admin(Ctx ctx) { return Admin.create(common(ctx)); }

    /** Kafka (KRaft) answers CreateTopics before every broker's metadata has the topic: wait for it. */
    static void awaitTopic(Admin a, String t) throws Exception {
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (true) {
            try {
                TopicDescription d = a.describeTopics(List.of(t)).allTopicNames().get().get(t);
                if (d.partitions().stream().allMatch(p -> p.leader() != null)) return;
            } catch (java.util.concurrent.ExecutionException e) {
                if (!(e.getCause() instanceof org.apache.kafka.common.errors.UnknownTopicOrPartitionException)) throw e;
            }
            if (System.nanoTime() > deadline) throw new AssertionError("topic " + t + " never became visible");
            Thread.sleep(50);
        }
    }

    static List<RecordMetadata> produce(Ctx ctx, String topic, List<Rec> recs, Consumer<Properties> tweak) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer(ctx, tweak)) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (Rec r : recs) fs.add(p.send(new ProducerRecord<>(topic, null, r.key, r.value, r.headers)));
            List<RecordMetadata> out = new ArrayList<>();
            for (var f : fs) out.add(f.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS));
            return out;
        }
    }

    static List<ConsumerRecord<byte[], byte[]>> consumeAssigned(Ctx ctx, String topic, int n, Consumer<Properties> tweak) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(ctx, tweak)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            return pollN(c, n);
        }
    }

    static List<ConsumerRecord<byte[], byte[]>> pollN(KafkaConsumer<byte[], byte[]> c, int n) {
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        long deadline = System.nanoTime() + TIMEOUT.toNanos();
        while (got.size() < n && System.nanoTime() < deadline)
            for (var r : c.poll(Duration.ofMillis(300))) got.add(r);
        return got;
    }

    /** A KIP-848 consumer (group.protocol=consumer) on its own thread; it commits before giving a partition up. */
    static final class Member implements AutoCloseable {
        final KafkaConsumer<byte[], byte[]> c;
        final Set<String> read;
        final List<String> duplicates = Collections.synchronizedList(new ArrayList<>());
        volatile Set<Integer> owned = Set.of();
        volatile boolean stop;
        final Thread thread;
        Member(Ctx ctx, String group, String topic, Set<String> read) {
            this.read = read;
            c = consumer(ctx, x -> { x.put("group.id", group); x.put("group.protocol", "consumer"); });
            c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                public void onPartitionsRevoked(Collection<TopicPartition> ps) { c.commitSync(); }
                public void onPartitionsAssigned(Collection<TopicPartition> ps) { }
            });
            thread = new Thread(() -> {
                while (!stop) {
                    for (var r : c.poll(Duration.ofMillis(100)))
                        if (!read.add(r.partition() + "/" + r.offset())) duplicates.add(r.partition() + "/" + r.offset());
                    Set<Integer> now = new TreeSet<>();
                    for (TopicPartition tp : c.assignment()) now.add(tp.partition());
                    owned = now;
                }
                c.close();  // commits nothing more; leaves the group (epoch -1)
            });
            thread.start();
        }
        public void close() throws InterruptedException { stop = true; thread.join(20_000); }
    }

    static void await(java.util.function.BooleanSupplier cond, String what) throws Exception {
        long deadline = System.nanoTime() + Duration.ofSeconds(40).toNanos();
        while (!cond.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(50);
        }
    }

    static boolean split(List<Member> ms, int partitions) {
        List<Integer> all = new ArrayList<>();
        int min = Integer.MAX_VALUE, max = 0;
        for (Member m : ms) { all.addAll(m.owned); min = Math.min(min, m.owned.size()); max = Math.max(max, m.owned.size()); }
        Collections.sort(all);
        List<Integer> want = new ArrayList<>();
        for (int i = 0; i < partitions; i++) want.add(i);
        return all.equals(want) && max - min <= 1;
    }

    static void produceSpread(Ctx ctx, String topic, int n, int partitions) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = producer(ctx, x -> {})) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < n; i++) fs.add(p.send(new ProducerRecord<>(topic, i % partitions, null, ("v" + i).getBytes())));
            for (var f : fs) f.get(TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    static String str(byte[] b) { return b == null ? null : new String(b, StandardCharsets.UTF_8); }

    static void checkRecords(List<ConsumerRecord<byte[], byte[]>> got, List<Rec> expected, long start) {
        eq(got.size(), expected.size(), "record count");
        for (int i = 0; i < got.size(); i++) {
            var g = got.get(i); var e = expected.get(i);
            eq(g.offset(), start + i, "offset of record " + i);
            eq(str(g.key()), str(e.key), "key of record " + i);
            eq(str(g.value()), str(e.value), "value of record " + i);
            List<String> gh = new ArrayList<>(), eh = new ArrayList<>();
            for (Header h : g.headers()) gh.add(h.key() + "=" + str(h.value()));
            for (Header h : e.headers) eh.add(h.key() + "=" + str(h.value()));
            eq(gh, eh, "headers of record " + i);
            check(g.timestamp() > 0, "timestamp " + g.timestamp());
            eq(g.timestampType(), org.apache.kafka.common.record.TimestampType.CREATE_TIME, "timestamp type");
        }
    }

    static {
        SCENARIOS.put("metadata", ctx -> {
            try (Admin a = admin(ctx)) {
                DescribeClusterResult dc = a.describeCluster();
                eq(dc.nodes().get().size(), ctx.bootstrap.split(",").length, "nodes");  // every broker listed
                check(dc.clusterId().get() != null, "cluster id");
                check(dc.controller().get() != null && dc.controller().get().id() >= 0, "controller");
            }
            try (KafkaProducer<byte[], byte[]> p = producer(ctx, x -> {})) {
                List<PartitionInfo> parts = p.partitionsFor(ctx.topic());  // auto-creates
                eq(parts.size(), 1, "partitions of an auto-created topic");
                check(parts.get(0).leader() != null && parts.get(0).leader().id() >= 0, "leader");
            }
        });
        SCENARIOS.put("produce-consume", ctx -> {
            List<RecordMetadata> md = produce(ctx, ctx.topic(), RECORDS, x -> {});
            for (int i = 0; i < md.size(); i++) eq(md.get(i).offset(), (long) i, "produce offset " + i);
            checkRecords(consumeAssigned(ctx, ctx.topic(), RECORDS.size(), x -> {}), RECORDS, 0);
        });
        for (String codec : List.of("gzip", "snappy", "lz4", "zstd")) {
            SCENARIOS.put("compression-" + codec, ctx -> {
                produce(ctx, ctx.topic(), RECORDS, p -> p.put("compression.type", codec));
                checkRecords(consumeAssigned(ctx, ctx.topic(), RECORDS.size(), x -> {}), RECORDS, 0);
            });
        }
        SCENARIOS.put("producer-acks-0-and-1", ctx -> {
            produce(ctx, ctx.topic(), RECORDS.subList(0, 2), p -> { p.put("acks", "0"); p.put("enable.idempotence", "false"); });
            produce(ctx, ctx.topic(), RECORDS.subList(2, 5), p -> { p.put("acks", "1"); p.put("enable.idempotence", "false"); });
            checkRecords(consumeAssigned(ctx, ctx.topic(), RECORDS.size(), x -> {}), RECORDS, 0);
        });
        SCENARIOS.put("transactions", ctx -> {
            String t = ctx.topic();
            try (KafkaProducer<byte[], byte[]> p = producer(ctx, x -> x.put("transactional.id", t + "-txn"))) {
                p.initTransactions();
                p.beginTransaction();
                p.send(new ProducerRecord<>(t, "aborted".getBytes(), "x".getBytes()));
                p.flush();
                p.abortTransaction();
                p.beginTransaction();
                p.send(new ProducerRecord<>(t, "committed".getBytes(), "y".getBytes()));
                p.commitTransaction();
            }
            var got = consumeAssigned(ctx, t, 1, x -> x.put("isolation.level", "read_committed"));
            eq(got.size(), 1, "read_committed records");
            eq(str(got.get(0).key()), "committed", "key");
            // aborted record (0), its abort marker (1), committed record (2), commit marker (3)
            eq(got.get(0).offset(), 2L, "offset of the committed record");
            try (KafkaConsumer<byte[], byte[]> c = consumer(ctx, x -> x.put("isolation.level", "read_committed"))) {
                eq(c.endOffsets(List.of(new TopicPartition(t, 0))).values().iterator().next(), 4L, "end offset");
            }
        });
        // Transactions as a 4.4 producer runs them where transaction.version 2 is finalized (KIP-890
        // part 2: no AddPartitionsToTxn/AddOffsetsToTxn, EndTxn v5 bumping the epoch), offsets included.
        SCENARIOS.put("transactions-v2", ctx -> {
            String t = ctx.topic(), g = ctx.topic("group");
            TopicPartition tp = new TopicPartition(t, 0);
            try (Admin a = admin(ctx)) {
                var tv = a.describeFeatures().featureMetadata().get().finalizedFeatures().get("transaction.version");
                eq(tv == null ? null : tv.maxVersionLevel(), (short) 2, "finalized transaction.version");
            }
            try (KafkaProducer<byte[], byte[]> p = producer(ctx, x -> x.put("transactional.id", t + "-txn"))) {
                p.initTransactions();
                p.beginTransaction();
                p.abortTransaction();  // an empty transaction
                p.beginTransaction();
                p.send(new ProducerRecord<>(t, "aborted".getBytes(), "x".getBytes()));
                p.flush();  // written, so the abort has a partition to mark
                p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(5)), new ConsumerGroupMetadata(g));
                p.abortTransaction();
                p.beginTransaction();
                p.send(new ProducerRecord<>(t, "committed".getBytes(), "y".getBytes()));
                p.sendOffsetsToTransaction(Map.of(tp, new OffsetAndMetadata(7)), new ConsumerGroupMetadata(g));
                p.commitTransaction();
            }
            var got = consumeAssigned(ctx, t, 1, x -> x.put("isolation.level", "read_committed"));
            eq(got.size(), 1, "read_committed records");
            eq(str(got.get(0).key()), "committed", "key");
            eq(got.get(0).offset(), 2L, "offset of the committed record");
            try (Admin a = admin(ctx)) {
                var committed = a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get().get(tp);
                eq(committed == null ? null : committed.offset(), 7L, "offset committed in the transaction");
            }
        });
        SCENARIOS.put("list-offsets", ctx -> {
            String t = ctx.topic();
            long base = System.currentTimeMillis() - 60_000;
            try (KafkaProducer<byte[], byte[]> p = producer(ctx, x -> {})) {
                for (int i = 0; i < 5; i++) p.send(new ProducerRecord<>(t, 0, base + i * 1000L, null, ("v" + i).getBytes()));
                p.flush();
            }
            try (KafkaConsumer<byte[], byte[]> c = consumer(ctx, x -> {})) {
                TopicPartition tp = new TopicPartition(t, 0);
                eq(c.beginningOffsets(List.of(tp)).get(tp), 0L, "beginning offset");
                eq(c.endOffsets(List.of(tp)).get(tp), 5L, "end offset");
                var ot = c.offsetsForTimes(Map.of(tp, base + 2500)).get(tp);
                check(ot != null, "offsetsForTimes returned null");
                eq(ot.offset(), 3L, "offset for time");
                eq(ot.timestamp(), base + 3000, "timestamp for time");
                eq(c.offsetsForTimes(Map.of(tp, base + 999_999)).get(tp), null, "offset for a future time");
            }
            try (Admin a = admin(ctx)) {
                TopicPartition tp = new TopicPartition(t, 0);
                var max = a.listOffsets(Map.of(tp, OffsetSpec.maxTimestamp())).partitionResult(tp).get();
                eq(max.offset(), 4L, "max timestamp offset");
                eq(max.timestamp(), base + 4000, "max timestamp");
            }
        });
        SCENARIOS.put("group-commit", ctx -> {
            String t = ctx.topic(), g = ctx.topic("group");
            produce(ctx, t, RECORDS, x -> {});
            TopicPartition tp = new TopicPartition(t, 0);
            try (KafkaConsumer<byte[], byte[]> c = consumer(ctx, x -> x.put("group.id", g))) {
                c.subscribe(List.of(t));
                var got = pollN(c, RECORDS.size());
                eq(got.size(), RECORDS.size(), "records consumed in the group");
                c.commitSync(Map.of(tp, new OffsetAndMetadata(3, "meta")));
                var committed = c.committed(Set.of(tp)).get(tp);
                eq(committed.offset(), 3L, "committed offset");
                eq(committed.metadata(), "meta", "committed metadata");
            }
            try (KafkaConsumer<byte[], byte[]> c = consumer(ctx, x -> x.put("group.id", g))) {
                c.subscribe(List.of(t));
                var got = pollN(c, 1);
                check(!got.isEmpty(), "no records after rejoining");
                eq(got.get(0).offset(), 3L, "first offset after rejoining");
            }
            try (Admin a = admin(ctx)) {
                var offsets = a.listConsumerGroupOffsets(g).partitionsToOffsetAndMetadata().get();
                eq(offsets.get(tp).offset(), 3L, "admin: group offset");
                var groups = a.listGroups().all().get();
                check(groups.stream().anyMatch(x -> x.groupId().equals(g)), "admin: group not listed");
                var d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get();
                eq(d.groupState(), GroupState.EMPTY, "admin: group state");
            }
        });
        SCENARIOS.put("consumer-protocol-group", ctx -> {
            // KIP-848: two, then three group.protocol=consumer members share 6 partitions and read
            // every record once; one leaves and the others take its partitions
            String t = ctx.topic(), g = ctx.topic("group");
            try (Admin a = admin(ctx)) {
                // the broker's default replication factor: 3 on the compat cluster, so the acks=all
                // writes meet its min.insync.replicas=2
                a.createTopics(List.of(new NewTopic(t, Optional.of(6), Optional.empty()))).all().get();
                awaitTopic(a, t);
            }
            produceSpread(ctx, t, 60, 6);
            Set<String> read = Collections.synchronizedSet(new HashSet<>());
            List<Member> ms = new ArrayList<>();
            try {
                ms.add(new Member(ctx, g, t, read));
                ms.add(new Member(ctx, g, t, read));
                await(() -> split(ms, 6) && read.size() == 60, "two members to share 6 partitions and read 60 records");
                ms.add(new Member(ctx, g, t, read));
                await(() -> split(ms, 6), "three members to own two partitions each");
                produceSpread(ctx, t, 60, 6);
                await(() -> read.size() == 120, "all 120 records");
                for (Member m : ms) eq(m.duplicates, List.of(), "records read twice");
                try (Admin a = admin(ctx)) {
                    var d = a.describeConsumerGroups(List.of(g)).describedGroups().get(g).get();
                    eq(d.type(), GroupType.CONSUMER, "admin: group type");
                    eq(d.members().size(), 3, "admin: members");
                    eq(d.partitionAssignor(), "uniform", "admin: assignor");
                    var listed = a.listGroups().all().get().stream().filter(x -> x.groupId().equals(g)).findFirst();
                    check(listed.isPresent() && listed.get().type().equals(Optional.of(GroupType.CONSUMER)), "admin: listed type " + listed);
                }
                ms.remove(2).close();
                await(() -> split(ms, 6), "the two left to take the leaver's partitions");
            } finally {
                for (Member m : ms) m.close();
            }
        });
        SCENARIOS.put("admin-topics", ctx -> {
            String t = ctx.topic();
            try (Admin a = admin(ctx)) {
                a.createTopics(List.of(new NewTopic(t, 3, (short) 1).configs(Map.of("retention.ms", "123456")))).all().get();
                awaitTopic(a, t);
                check(a.listTopics().names().get().contains(t), "created topic not listed");
                TopicDescription d = a.describeTopics(List.of(t)).allTopicNames().get().get(t);
                eq(d.partitions().size(), 3, "partitions");
                check(d.topicId() != null && !d.topicId().equals(Uuid.ZERO_UUID), "topic id");
                try {
                    a.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get();
                    throw new AssertionError("creating an existing topic succeeded");
                } catch (java.util.concurrent.ExecutionException e) {
                    check(e.getCause() instanceof TopicExistsException, "expected TopicExistsException, got " + e.getCause());
                }
                a.createPartitions(Map.of(t, NewPartitions.increaseTo(4))).all().get();
                // KRaft Kafka answers CreatePartitions before its metadata shows the new partition
                long deadline = System.nanoTime() + TIMEOUT.toNanos();
                while (a.describeTopics(List.of(t)).allTopicNames().get().get(t).partitions().size() < 4
                        && System.nanoTime() < deadline) Thread.sleep(100);
                eq(a.describeTopics(List.of(t)).allTopicNames().get().get(t).partitions().size(), 4, "partitions after increase");
                a.deleteTopics(List.of(t)).all().get();
                deadline = System.nanoTime() + TIMEOUT.toNanos();
                while (a.listTopics().names().get().contains(t) && System.nanoTime() < deadline) Thread.sleep(100);
                check(!a.listTopics().names().get().contains(t), "deleted topic still listed");
            }
        });
        SCENARIOS.put("admin-configs", ctx -> {
            String t = ctx.topic();
            try (Admin a = admin(ctx)) {
                a.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get();
                awaitTopic(a, t);
                ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, t);
                Config c = a.describeConfigs(List.of(r)).all().get().get(r);
                eq(c.get("cleanup.policy").value(), "delete", "cleanup.policy");
                eq(c.get("cleanup.policy").source(), ConfigEntry.ConfigSource.DEFAULT_CONFIG, "cleanup.policy source");
                eq(c.get("retention.ms").value(), "604800000", "retention.ms");
                a.incrementalAlterConfigs(Map.of(r, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "86400000"), AlterConfigOp.OpType.SET)))).all().get();
                // KRaft Kafka answers IncrementalAlterConfigs before its metadata cache has applied the change
                long deadline = System.nanoTime() + TIMEOUT.toNanos();
                c = a.describeConfigs(List.of(r)).all().get().get(r);
                while (!"86400000".equals(c.get("retention.ms").value()) && System.nanoTime() < deadline) {
                    Thread.sleep(50);
                    c = a.describeConfigs(List.of(r)).all().get().get(r);
                }
                eq(c.get("retention.ms").value(), "86400000", "retention.ms after alter");
                eq(c.get("retention.ms").source(), ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "retention.ms source after alter");
                ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, "1");
                Config bc = a.describeConfigs(List.of(b)).all().get().get(b);
                eq(bc.get("num.partitions").value(), "1", "broker num.partitions");
                eq(bc.get("num.partitions").source(), ConfigEntry.ConfigSource.STATIC_BROKER_CONFIG, "num.partitions source");
            }
        });
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> { if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch)); else b.append(ch); }
            }
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("updates-producer")) {
            UpdatesProducer.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (args.length > 0 && args[0].equals("acking-producer")) {
            AckingProducer.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (args.length > 0 && args[0].equals("group-consumer")) {
            GroupConsumer.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (args.length > 0 && args[0].equals("transactional-producer")) {
            TransactionalProducer.main(Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        String bootstrap = null, prefix = "compat-java", only = "";
        boolean list = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--list" -> list = true;
                case "--bootstrap" -> bootstrap = args[++i];
                case "--prefix" -> prefix = args[++i];
                case "--only" -> only = args[++i];
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        if (list) { SCENARIOS.keySet().forEach(System.out::println); return; }
        Set<String> sel = new HashSet<>();
        for (String s : only.split(",")) if (!s.isEmpty()) sel.add(s);
        int failed = 0;
        for (var e : SCENARIOS.entrySet()) {
            if (!sel.isEmpty() && !sel.contains(e.getKey())) continue;
            Ctx ctx = new Ctx(bootstrap, prefix);
            ctx.scenario = e.getKey();
            System.out.println("{\"event\": \"start\", \"scenario\": " + json(e.getKey()) + "}");
            System.out.flush();
            long t0 = System.nanoTime();
            String status = "pass", detail = "";
            try {
                e.getValue().run(ctx);
            } catch (Throwable ex) {
                Throwable c = ex instanceof java.util.concurrent.ExecutionException && ex.getCause() != null ? ex.getCause() : ex;
                status = "fail";
                detail = c.getClass().getSimpleName() + ": " + c.getMessage();
                failed++;
                System.err.println("--- " + e.getKey() + " failed");
                ex.printStackTrace();
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            System.out.println("{\"event\": \"end\", \"scenario\": " + json(e.getKey()) + ", \"status\": " + json(status)
                + ", \"detail\": " + json(detail.length() > 2000 ? detail.substring(0, 2000) : detail)
                + ", \"seconds\": " + String.format(Locale.ROOT, "%.3f", secs) + "}");
            System.out.flush();
        }
        System.exit(failed > 0 ? 1 : 0);
    }
}
