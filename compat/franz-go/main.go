// compat/franz-go: franz-go's kgo (client) and kadm (admin) against a broker.
// Protocol (compat/scenario.py): --list | --bootstrap B --prefix P [--only a,b] -> JSON lines.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type ctxT struct {
	bootstrap, prefix, scenario string
}

func (c *ctxT) topic(suffix string) string {
	t := c.prefix + "-" + c.scenario
	if suffix != "" {
		t += "-" + suffix
	}
	return t
}

type scenario struct {
	name string
	fn   func(context.Context, *ctxT) error
}

var scenarios []scenario

func add(name string, fn func(context.Context, *ctxT) error) {
	scenarios = append(scenarios, scenario{name, fn})
}

func client(c *ctxT, opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(c.bootstrap, ",")...), // a cluster: several, comma-separated
		kgo.AllowAutoTopicCreation(),                        // franz-go does not auto-create on produce by default
		kgo.MetadataMinAge(250 * time.Millisecond),          // default 5s: a just auto-created topic costs 5s
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.RequestTimeoutOverhead(5 * time.Second),
		kgo.RetryTimeout(15 * time.Second),
	}
	return kgo.NewClient(append(base, opts...)...)
}

func eq(actual, expected any, what string) error {
	if !reflect.DeepEqual(actual, expected) {
		return fmt.Errorf("%s: expected %v, got %v", what, expected, actual)
	}
	return nil
}

func str(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func records(topic string) []*kgo.Record {
	return []*kgo.Record{
		{Topic: topic, Key: []byte("k0"), Value: []byte("v0"), Headers: []kgo.RecordHeader{{Key: "h1", Value: []byte("a")}}},
		{Topic: topic, Key: nil, Value: []byte("null-key")},
		{Topic: topic, Key: []byte("tomb"), Value: nil},
		{Topic: topic, Key: []byte(""), Value: []byte(""), Headers: []kgo.RecordHeader{{Key: "empty", Value: []byte("")}}},
		{Topic: topic, Key: []byte("k4"), Value: []byte(strings.Repeat("v", 1000)),
			Headers: []kgo.RecordHeader{{Key: "dup", Value: []byte("1")}, {Key: "dup", Value: []byte("2")}}},
	}
}

func produce(ctx context.Context, c *ctxT, topic string, opts ...kgo.Opt) ([]*kgo.Record, error) {
	cl, err := client(c, opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	recs := records(topic)
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, err
	}
	return recs, nil
}

func consume(ctx context.Context, c *ctxT, topic string, n int, opts ...kgo.Opt) ([]*kgo.Record, error) {
	cl, err := client(c, append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {0: kgo.NewOffset().AtStart()}})}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return poll(ctx, cl, n)
}

func poll(ctx context.Context, cl *kgo.Client, n int) ([]*kgo.Record, error) {
	var got []*kgo.Record
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return got, fmt.Errorf("got %d of %d records before the timeout", len(got), n)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return got, ferr
		}
		got = append(got, fs.Records()...)
	}
	return got, nil
}

func checkRecords(got []*kgo.Record, topic string) error {
	exp := records(topic)
	if err := eq(len(got), len(exp), "record count"); err != nil {
		return err
	}
	for i, g := range got {
		e := exp[i]
		hs := func(r *kgo.Record) []string {
			out := []string{}
			for _, h := range r.Headers {
				out = append(out, h.Key+"="+string(h.Value))
			}
			return out
		}
		for _, err := range []error{
			eq(g.Offset, int64(i), fmt.Sprintf("offset of record %d", i)),
			eq(str(g.Key), str(e.Key), fmt.Sprintf("key of record %d", i)),
			eq(str(g.Value), str(e.Value), fmt.Sprintf("value of record %d", i)),
			eq(hs(g), hs(e), fmt.Sprintf("headers of record %d", i)),
		} {
			if err != nil {
				return err
			}
		}
		if g.Timestamp.Year() < 2020 {
			return fmt.Errorf("record %d timestamp %v", i, g.Timestamp)
		}
	}
	return nil
}

// awaitTopic: Kafka (KRaft) answers CreateTopics before the broker's metadata has the topic.
func awaitTopic(ctx context.Context, adm *kadm.Client, t string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		td, err := adm.ListTopics(ctx, t)
		if err == nil && td[t].Err == nil && len(td[t].Partitions) > 0 {
			ok := true
			for _, p := range td[t].Partitions {
				ok = ok && p.Leader >= 0
			}
			if ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s never became visible: %v", t, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func admin(c *ctxT) (*kadm.Client, func(), error) {
	cl, err := client(c)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// member848 is a KIP-848 consumer (kgo.ServerSideBalancer) polled by its own goroutine.
type member848 struct {
	cl   *kgo.Client
	mu   sync.Mutex
	own  map[int32]bool
	stop context.CancelFunc
	done chan struct{}
}

func (m *member848) owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.own {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (m *member848) close() {
	m.stop()
	<-m.done
	m.cl.Close() // commits what was polled, then leaves the group (epoch -1)
}

// readSet records every (partition, offset) consumed, and the ones consumed twice.
type readSet struct {
	mu   sync.Mutex
	seen map[string]bool
	dups []string
}

func (r *readSet) add(p int32, o int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := fmt.Sprintf("%d/%d", p, o)
	if r.seen[k] {
		r.dups = append(r.dups, k)
	}
	r.seen[k] = true
}

func (r *readSet) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func newMember848(c *ctxT, g, t string, read *readSet) (*member848, error) {
	m := &member848{own: map[int32]bool{}, done: make(chan struct{})}
	update := func(ps map[string][]int32, add bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range ps[t] {
			if add {
				m.own[p] = true
			} else {
				delete(m.own, p)
			}
		}
	}
	cl, err := client(c, kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update(ps, true) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			cl.CommitUncommittedOffsets(ctx) // the next owner starts after what was read here
			update(ps, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { update(ps, false) }))
	if err != nil {
		return nil, err
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { read.add(r.Partition, r.Offset) })
		}
	}()
	return m, nil
}

func split848(ms []*member848, partitions int) bool {
	var all []int32
	lo, hi := partitions, 0
	for _, m := range ms {
		o := m.owned()
		all = append(all, o...)
		if len(o) < lo {
			lo = len(o)
		}
		if len(o) > hi {
			hi = len(o)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	if len(all) != partitions || hi-lo > 1 {
		return false
	}
	for i, p := range all {
		if int(p) != i {
			return false
		}
	}
	return true
}

func await848(what string, cond func() bool) error {
	deadline := time.Now().Add(40 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

func produceSpread(ctx context.Context, c *ctxT, t string, n, partitions int) error {
	cl, err := client(c, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := 0; i < n; i++ {
		rs = append(rs, &kgo.Record{Topic: t, Partition: int32(i % partitions), Value: []byte(fmt.Sprint(i))})
	}
	return cl.ProduceSync(ctx, rs...).FirstErr()
}

func init() {
	add("metadata", func(ctx context.Context, c *ctxT) error {
		adm, done, err := admin(c)
		if err != nil {
			return err
		}
		defer done()
		if _, err := produce(ctx, c, c.topic("")); err != nil {
			return err
		}
		md, err := adm.Metadata(ctx, c.topic(""))
		if err != nil {
			return err
		}
		if err := eq(len(md.Brokers), len(strings.Split(c.bootstrap, ",")), "brokers"); err != nil {
			return err
		}
		if md.Cluster == "" || md.Controller < 0 {
			return fmt.Errorf("cluster %q controller %d", md.Cluster, md.Controller)
		}
		td := md.Topics[c.topic("")]
		if td.Err != nil {
			return td.Err
		}
		return eq(len(td.Partitions), 1, "partitions")
	})
	add("produce-consume", func(ctx context.Context, c *ctxT) error {
		recs, err := produce(ctx, c, c.topic(""))
		if err != nil {
			return err
		}
		for i, r := range recs {
			if r.Offset != int64(i) {
				return fmt.Errorf("produced record %d got offset %d", i, r.Offset)
			}
		}
		got, err := consume(ctx, c, c.topic(""), len(recs))
		if err != nil {
			return err
		}
		return checkRecords(got, c.topic(""))
	})
	for _, cc := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()}, {"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()}} {
		cc := cc
		add("compression-"+cc.name, func(ctx context.Context, c *ctxT) error {
			if _, err := produce(ctx, c, c.topic(""), kgo.ProducerBatchCompression(cc.codec)); err != nil {
				return err
			}
			got, err := consume(ctx, c, c.topic(""), 5)
			if err != nil {
				return err
			}
			return checkRecords(got, c.topic(""))
		})
	}
	add("acks-1-not-idempotent", func(ctx context.Context, c *ctxT) error {
		if _, err := produce(ctx, c, c.topic(""), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()); err != nil {
			return err
		}
		got, err := consume(ctx, c, c.topic(""), 5)
		if err != nil {
			return err
		}
		return checkRecords(got, c.topic(""))
	})
	add("transactions", func(ctx context.Context, c *ctxT) error {
		t := c.topic("")
		cl, err := client(c, kgo.TransactionalID(t+"-txn"))
		if err != nil {
			return err
		}
		defer cl.Close()
		for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
			if err := cl.BeginTransaction(); err != nil {
				return err
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: t, Value: []byte(fmt.Sprint(commit))}).FirstErr(); err != nil {
				return err
			}
			if err := cl.EndTransaction(ctx, commit); err != nil {
				return err
			}
		}
		got, err := consume(ctx, c, t, 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		if err != nil {
			return err
		}
		return eq([]any{got[0].Offset, string(got[0].Value)}, []any{int64(2), fmt.Sprint(kgo.TryCommit)}, "committed record")
	})
	add("list-offsets", func(ctx context.Context, c *ctxT) error {
		t := c.topic("")
		base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		cl, err := client(c)
		if err != nil {
			return err
		}
		defer cl.Close()
		var rs []*kgo.Record
		for i := 0; i < 5; i++ {
			rs = append(rs, &kgo.Record{Topic: t, Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Second)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return err
		}
		adm := kadm.NewClient(cl)
		start, err := adm.ListStartOffsets(ctx, t)
		if err != nil {
			return err
		}
		end, err := adm.ListEndOffsets(ctx, t)
		if err != nil {
			return err
		}
		after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(2500*time.Millisecond).UnixMilli(), t)
		if err != nil {
			return err
		}
		s, _ := start.Lookup(t, 0)
		e, _ := end.Lookup(t, 0)
		a, _ := after.Lookup(t, 0)
		return eq([]int64{s.Offset, e.Offset, a.Offset, a.Timestamp}, []int64{0, 5, 3, base.Add(3 * time.Second).UnixMilli()},
			"start, end, offset after time, its timestamp")
	})
	add("consumer-protocol-group", func(ctx context.Context, c *ctxT) error {
		// KIP-848: two, then three kgo.ServerSideBalancer members share 6 partitions and read every
		// record once; one leaves and the others take its partitions
		t, g := c.topic(""), c.topic("group")
		adm, done, err := admin(c)
		if err != nil {
			return err
		}
		defer done()
		// -1: the broker's default replication factor (3 on the compat cluster, whose
		// min.insync.replicas=2 an acks=all write to a single replica would not meet)
		if _, err := adm.CreateTopic(ctx, 6, -1, nil, t); err != nil {
			return err
		}
		if err := awaitTopic(ctx, adm, t); err != nil {
			return err
		}
		if err := produceSpread(ctx, c, t, 60, 6); err != nil {
			return err
		}
		read := &readSet{seen: map[string]bool{}}
		var ms []*member848
		defer func() {
			for _, m := range ms {
				m.close()
			}
		}()
		for i := 0; i < 2; i++ {
			m, err := newMember848(c, g, t, read)
			if err != nil {
				return err
			}
			ms = append(ms, m)
		}
		if err := await848("two members to share 6 partitions and read 60 records", func() bool {
			return split848(ms, 6) && read.size() == 60
		}); err != nil {
			return err
		}
		m, err := newMember848(c, g, t, read)
		if err != nil {
			return err
		}
		ms = append(ms, m)
		if err := await848("three members to own two partitions each", func() bool { return split848(ms, 6) }); err != nil {
			return err
		}
		if err := produceSpread(ctx, c, t, 60, 6); err != nil {
			return err
		}
		if err := await848("all 120 records", func() bool { return read.size() == 120 }); err != nil {
			return err
		}
		if len(read.dups) > 0 {
			return fmt.Errorf("records read twice: %v", read.dups)
		}
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return err
		}
		if lg, ok := groups[g]; !ok || lg.ProtocolType != "consumer" {
			return fmt.Errorf("group %s not listed as a consumer group: %v", g, groups)
		}
		last := ms[2]
		ms = ms[:2]
		last.close()
		return await848("the two left to take the leaver's partitions", func() bool { return split848(ms, 6) })
	})
	add("group-commit", func(ctx context.Context, c *ctxT) error {
		t, g := c.topic(""), c.topic("group")
		if _, err := produce(ctx, c, t); err != nil {
			return err
		}
		cl, err := client(c, kgo.ConsumerGroup(g), kgo.ConsumeTopics(t), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return err
		}
		got, err := poll(ctx, cl, 5)
		if err != nil {
			cl.Close()
			return err
		}
		if err := cl.CommitRecords(ctx, got[2]); err != nil {
			cl.Close()
			return err
		}
		cl.Close() // leaves the group
		adm, done, err := admin(c)
		if err != nil {
			return err
		}
		defer done()
		offs, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			return err
		}
		o, ok := offs.Lookup(t, 0)
		if !ok || o.Err != nil {
			return fmt.Errorf("no committed offset: %v", o.Err)
		}
		if err := eq(o.At, int64(3), "committed offset"); err != nil {
			return err
		}
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return err
		}
		if _, ok := groups[g]; !ok {
			return fmt.Errorf("group %s not listed: %v", g, groups.Groups())
		}
		return nil
	})
	add("admin-topics", func(ctx context.Context, c *ctxT) error {
		adm, done, err := admin(c)
		if err != nil {
			return err
		}
		defer done()
		t := c.topic("")
		res, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("123456")}, t)
		if err != nil {
			return err
		}
		if r := res[t]; r.Err != nil {
			return fmt.Errorf("create: %w (%s)", r.Err, r.ErrMessage)
		}
		if err := awaitTopic(ctx, adm, t); err != nil {
			return err
		}
		res, err = adm.CreateTopics(ctx, 1, 1, nil, t)
		if err != nil {
			return err
		}
		if !errors.Is(res[t].Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("second create: expected TOPIC_ALREADY_EXISTS, got %v", res[t].Err)
		}
		td, err := adm.ListTopics(ctx, t)
		if err != nil {
			return err
		}
		if err := eq(len(td[t].Partitions), 3, "partitions"); err != nil {
			return err
		}
		cp, err := adm.CreatePartitions(ctx, 1, t)
		if err != nil {
			return err
		}
		if r := cp[t]; r.Err != nil {
			return fmt.Errorf("create partitions: %w", r.Err)
		}
		dr, err := adm.DeleteTopics(ctx, t)
		if err != nil {
			return err
		}
		if r := dr[t]; r.Err != nil {
			return fmt.Errorf("delete: %w", r.Err)
		}
		return nil
	})
	add("admin-configs", func(ctx context.Context, c *ctxT) error {
		adm, done, err := admin(c)
		if err != nil {
			return err
		}
		defer done()
		t := c.topic("")
		if _, err := adm.CreateTopics(ctx, 1, 1, nil, t); err != nil {
			return err
		}
		if err := awaitTopic(ctx, adm, t); err != nil {
			return err
		}
		if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("86400000")}}, t); err != nil {
			return err
		}
		want := map[string]string{
			"retention.ms":   "86400000/" + kmsg.ConfigSourceDynamicTopicConfig.String(),
			"cleanup.policy": "delete/" + kmsg.ConfigSourceDefaultConfig.String(),
		}
		// kadm may describe on another broker than the one that altered: in a cluster (Kafka's
		// KRaft brokers, kbroker's) each applies the change a moment later, so a few tries
		var found map[string]string
		for try := 0; try < 20; try++ {
			rc, err := adm.DescribeTopicConfigs(ctx, t)
			if err != nil {
				return err
			}
			r, err := rc.On(t, nil)
			if err != nil {
				return err
			}
			if r.Err != nil {
				return r.Err
			}
			found = map[string]string{}
			for _, cfg := range r.Configs {
				if cfg.Key == "retention.ms" || cfg.Key == "cleanup.policy" {
					found[cfg.Key] = fmt.Sprintf("%s/%s", cfg.MaybeValue(), cfg.Source)
				}
			}
			if reflect.DeepEqual(found, want) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return eq(found, want, "configs (value/source)")
	})
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func main() {
	list := flag.Bool("list", false, "list scenarios")
	bootstrap := flag.String("bootstrap", "", "host:port")
	prefix := flag.String("prefix", "compat-franz-go", "topic prefix")
	only := flag.String("only", "", "comma-separated scenarios")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Println(s.name)
		}
		return
	}
	sel := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			sel[s] = true
		}
	}
	failed := 0
	for _, s := range scenarios {
		if len(sel) > 0 && !sel[s.name] {
			continue
		}
		emit(map[string]any{"event": "start", "scenario": s.name})
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		err := s.fn(ctx, &ctxT{bootstrap: *bootstrap, prefix: *prefix, scenario: s.name})
		cancel()
		status, detail := "pass", ""
		if err != nil {
			status, detail = "fail", err.Error()
			failed++
			fmt.Fprintf(os.Stderr, "--- %s failed: %v\n", s.name, err)
		}
		emit(map[string]any{"event": "end", "scenario": s.name, "status": status, "detail": detail,
			"seconds": time.Since(t0).Seconds()})
	}
	if failed > 0 {
		os.Exit(1)
	}
}
