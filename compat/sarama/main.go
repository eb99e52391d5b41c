// compat/sarama: IBM/sarama (producer, consumer, consumer group, cluster admin) against a broker.
// Protocol (compat/scenario.py): --list | --bootstrap B --prefix P [--only a,b] -> JSON lines.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/IBM/sarama"
)

type ctxT struct{ bootstrap, prefix, scenario string }

// brokers: the bootstrap list (several brokers of a cluster, comma-separated).
func (c *ctxT) brokers() []string { return strings.Split(c.bootstrap, ",") }

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

func config(tweak ...func(*sarama.Config)) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V4_0_0_0
	cfg.ClientID = "compat-sarama"
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 15 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	for _, f := range tweak {
		f(cfg)
	}
	return cfg
}

func eq(actual, expected any, what string) error {
	if !reflect.DeepEqual(actual, expected) {
		return fmt.Errorf("%s: expected %v, got %v", what, expected, actual)
	}
	return nil
}

func bs(s string) sarama.Encoder { return sarama.ByteEncoder(s) }

func messages(topic string) []*sarama.ProducerMessage {
	return []*sarama.ProducerMessage{
		{Topic: topic, Key: bs("k0"), Value: bs("v0"), Headers: []sarama.RecordHeader{{Key: []byte("h1"), Value: []byte("a")}}},
		{Topic: topic, Key: nil, Value: bs("null-key")},
		{Topic: topic, Key: bs("tomb"), Value: nil},
		{Topic: topic, Key: bs("k3"), Value: bs(strings.Repeat("v", 1000)),
			Headers: []sarama.RecordHeader{{Key: []byte("dup"), Value: []byte("1")}, {Key: []byte("dup"), Value: []byte("2")}}},
	}
}

func produce(c *ctxT, topic string, tweak ...func(*sarama.Config)) error {
	p, err := sarama.NewSyncProducer(c.brokers(), config(tweak...))
	if err != nil {
		return err
	}
	defer p.Close()
	msgs := messages(topic)
	if err := p.SendMessages(msgs); err != nil {
		return err
	}
	for i, m := range msgs {
		if m.Offset != int64(i) {
			return fmt.Errorf("message %d produced at offset %d", i, m.Offset)
		}
	}
	return nil
}

func consume(ctx context.Context, c *ctxT, topic string, n int, tweak ...func(*sarama.Config)) ([]*sarama.ConsumerMessage, error) {
	cons, err := sarama.NewConsumer(c.brokers(), config(tweak...))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return nil, err
	}
	defer pc.Close()
	var got []*sarama.ConsumerMessage
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m := <-pc.Messages():
			got = append(got, m)
		case e := <-pc.Errors():
			return got, e
		case <-timeout:
			return got, fmt.Errorf("got %d of %d messages before the timeout", len(got), n)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
	return got, nil
}

func str(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

func enc(e sarama.Encoder) any {
	if e == nil {
		return nil
	}
	b, _ := e.Encode()
	return string(b)
}

func checkMessages(got []*sarama.ConsumerMessage, topic string) error {
	exp := messages(topic)
	if err := eq(len(got), len(exp), "message count"); err != nil {
		return err
	}
	for i, g := range got {
		e := exp[i]
		var gh, eh []string
		for _, h := range g.Headers {
			gh = append(gh, string(h.Key)+"="+string(h.Value))
		}
		for _, h := range e.Headers {
			eh = append(eh, string(h.Key)+"="+string(h.Value))
		}
		for _, err := range []error{
			eq(g.Offset, int64(i), fmt.Sprintf("offset of message %d", i)),
			eq(str(g.Key), enc(e.Key), fmt.Sprintf("key of message %d", i)),
			eq(str(g.Value), enc(e.Value), fmt.Sprintf("value of message %d", i)),
			eq(gh, eh, fmt.Sprintf("headers of message %d", i)),
		} {
			if err != nil {
				return err
			}
		}
		if g.Timestamp.Year() < 2020 {
			return fmt.Errorf("message %d timestamp %v", i, g.Timestamp)
		}
	}
	return nil
}

// awaitTopic: Kafka (KRaft) answers CreateTopics before the broker's metadata has the topic.
func awaitTopic(adm sarama.ClusterAdmin, t string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := adm.DescribeTopics([]string{t})
		if err == nil && len(md) == 1 && md[0].Err == sarama.ErrNoError && len(md[0].Partitions) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s never became visible: %v", t, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func produceConsume(ctx context.Context, c *ctxT, tweak ...func(*sarama.Config)) error {
	if err := produce(c, c.topic(""), tweak...); err != nil {
		return err
	}
	got, err := consume(ctx, c, c.topic(""), len(messages("")), tweak...)
	if err != nil {
		return err
	}
	return checkMessages(got, c.topic(""))
}

type handler struct {
	want int
	got  chan *sarama.ConsumerMessage
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.got <- m
		if m.Offset == 2 {
			s.MarkOffset(m.Topic, m.Partition, 3, "meta")
			s.Commit()
		}
	}
	return nil
}

func init() {
	add("metadata", func(ctx context.Context, c *ctxT) error {
		cl, err := sarama.NewClient(c.brokers(), config())
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := eq(len(cl.Brokers()), len(c.brokers()), "brokers"); err != nil {
			return err
		}
		if ctrl, err := cl.Controller(); err != nil || ctrl.ID() < 0 {
			return fmt.Errorf("controller: %v", err)
		}
		parts, err := cl.Partitions(c.topic("")) // auto-creates via Metadata
		if err != nil {
			return err
		}
		return eq(parts, []int32{0}, "partitions of an auto-created topic")
	})
	add("produce-consume", func(ctx context.Context, c *ctxT) error { return produceConsume(ctx, c) })
	add("produce-consume-default-version", func(ctx context.Context, c *ctxT) error {
		return produceConsume(ctx, c, func(cfg *sarama.Config) { cfg.Version = sarama.DefaultVersion })
	})
	for _, cc := range []struct {
		name  string
		codec sarama.CompressionCodec
	}{{"gzip", sarama.CompressionGZIP}, {"snappy", sarama.CompressionSnappy}, {"lz4", sarama.CompressionLZ4}, {"zstd", sarama.CompressionZSTD}} {
		cc := cc
		add("compression-"+cc.name, func(ctx context.Context, c *ctxT) error {
			return produceConsume(ctx, c, func(cfg *sarama.Config) { cfg.Producer.Compression = cc.codec })
		})
	}
	add("idempotent-producer", func(ctx context.Context, c *ctxT) error {
		return produceConsume(ctx, c, func(cfg *sarama.Config) {
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
		})
	})
	add("transactions", func(ctx context.Context, c *ctxT) error {
		t := c.topic("")
		p, err := sarama.NewSyncProducer(c.brokers(), config(func(cfg *sarama.Config) {
			cfg.Producer.Idempotent = true
			cfg.Net.MaxOpenRequests = 1
			cfg.Producer.Transaction.ID = t + "-txn"
		}))
		if err != nil {
			return err
		}
		defer p.Close()
		for _, commit := range []bool{false, true} {
			if err := p.BeginTxn(); err != nil {
				return err
			}
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Value: bs(fmt.Sprint(commit))}); err != nil {
				return err
			}
			if commit {
				err = p.CommitTxn()
			} else {
				err = p.AbortTxn()
			}
			if err != nil {
				return err
			}
		}
		got, err := consume(ctx, c, t, 1, func(cfg *sarama.Config) { cfg.Consumer.IsolationLevel = sarama.ReadCommitted })
		if err != nil {
			return err
		}
		return eq([]any{got[0].Offset, string(got[0].Value)}, []any{int64(2), "true"}, "committed message")
	})
	add("list-offsets", func(ctx context.Context, c *ctxT) error {
		t := c.topic("")
		base := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		p, err := sarama.NewSyncProducer(c.brokers(), config())
		if err != nil {
			return err
		}
		for i := 0; i < 5; i++ {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: t, Value: bs("x"), Timestamp: base.Add(time.Duration(i) * time.Second)}); err != nil {
				p.Close()
				return err
			}
		}
		p.Close()
		cl, err := sarama.NewClient(c.brokers(), config())
		if err != nil {
			return err
		}
		defer cl.Close()
		var got []int64
		for _, at := range []int64{sarama.OffsetOldest, sarama.OffsetNewest, base.Add(2500 * time.Millisecond).UnixMilli(), base.Add(time.Hour).UnixMilli()} {
			o, err := cl.GetOffset(t, 0, at)
			if err != nil {
				return err
			}
			got = append(got, o)
		}
		return eq(got, []int64{0, 5, 3, -1}, "oldest, newest, after a time, after the last timestamp")
	})
	add("group-commit", func(ctx context.Context, c *ctxT) error {
		t, g := c.topic(""), c.topic("group")
		if err := produce(c, t); err != nil {
			return err
		}
		cg, err := sarama.NewConsumerGroup(c.brokers(), g, config())
		if err != nil {
			return err
		}
		h := &handler{got: make(chan *sarama.ConsumerMessage, 100)}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- cg.Consume(cctx, []string{t}, h) }()
		var n int
		timeout := time.After(20 * time.Second)
	loop:
		for n < 4 {
			select {
			case <-h.got:
				n++
			case err := <-cg.Errors():
				cancel()
				cg.Close()
				return err
			case err := <-done:
				cancel()
				cg.Close()
				return fmt.Errorf("consume returned early: %v", err)
			case <-timeout:
				break loop
			}
		}
		cancel()
		<-done
		cg.Close()
		if n < 4 {
			return fmt.Errorf("group consumed %d of 4 messages", n)
		}
		adm, err := sarama.NewClusterAdmin(c.brokers(), config())
		if err != nil {
			return err
		}
		defer adm.Close()
		offs, err := adm.ListConsumerGroupOffsets(g, map[string][]int32{t: {0}})
		if err != nil {
			return err
		}
		b := offs.GetBlock(t, 0)
		if b == nil {
			return errors.New("no committed offset block")
		}
		return eq([]any{b.Offset, b.Metadata}, []any{int64(3), "meta"}, "committed offset and metadata")
	})
	add("admin-topics", func(ctx context.Context, c *ctxT) error {
		adm, err := sarama.NewClusterAdmin(c.brokers(), config())
		if err != nil {
			return err
		}
		defer adm.Close()
		t := c.topic("")
		ret := "123456"
		if err := adm.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"retention.ms": &ret}}, false); err != nil {
			return err
		}
		if err := awaitTopic(adm, t); err != nil {
			return err
		}
		err = adm.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
		var te *sarama.TopicError
		if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
			return fmt.Errorf("second create: expected TOPIC_ALREADY_EXISTS, got %v", err)
		}
		topics, err := adm.ListTopics()
		if err != nil {
			return err
		}
		if err := eq(topics[t].NumPartitions, int32(3), "partitions"); err != nil {
			return err
		}
		if err := adm.CreatePartitions(t, 4, nil, false); err != nil {
			return err
		}
		return adm.DeleteTopic(t)
	})
	add("admin-configs", func(ctx context.Context, c *ctxT) error {
		adm, err := sarama.NewClusterAdmin(c.brokers(), config())
		if err != nil {
			return err
		}
		defer adm.Close()
		t := c.topic("")
		if err := adm.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			return err
		}
		if err := awaitTopic(adm, t); err != nil {
			return err
		}
		v := "86400000"
		if err := adm.IncrementalAlterConfig(sarama.TopicResource, t, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &v}}, false); err != nil {
			return err
		}
		// KRaft Kafka answers IncrementalAlterConfigs before its metadata cache has applied the change
		found := map[string]string{}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t})
			if err != nil {
				return err
			}
			found = map[string]string{}
			for _, e := range entries {
				if e.Name == "retention.ms" || e.Name == "cleanup.policy" {
					found[e.Name] = fmt.Sprintf("%s/%s", e.Value, e.Source)
				}
			}
			if strings.HasPrefix(found["retention.ms"], v+"/") || time.Now().After(deadline) {
				break
			}
		}
		return eq(found, map[string]string{"retention.ms": "86400000/" + sarama.SourceTopic.String(),
			"cleanup.policy": "delete/" + sarama.SourceDefault.String()}, "configs (value/source)")
	})
}

func emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

func main() {
	list := flag.Bool("list", false, "list scenarios")
	bootstrap := flag.String("bootstrap", "", "host:port")
	prefix := flag.String("prefix", "compat-sarama", "topic prefix")
	only := flag.String("only", "", "comma-separated scenarios")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Println(s.name)
		}
		return
	}
	sarama.Logger = log.New(io.Discard, "", 0)
	if os.Getenv("SARAMA_LOG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags)
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
