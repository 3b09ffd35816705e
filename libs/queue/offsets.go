package queue

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// offsets lets the records of one partition finish out of order while the
// committed offset only moves past records that are all handled: a record is
// marked for commit once it and every earlier record of its partition are.
type offsets struct {
	mu    sync.Mutex
	parts map[topicPartition]*partitionOffsets
}

type topicPartition struct {
	topic     string
	partition int32
}

type partitionOffsets struct {
	queue    []*pending // in offset order
	inflight sync.WaitGroup
}

type pending struct {
	rec     *kgo.Record
	part    *partitionOffsets
	handled bool
}

func newOffsets() *offsets { return &offsets{parts: make(map[topicPartition]*partitionOffsets)} }

// start registers a record that is about to be handled.
func (o *offsets) start(r *kgo.Record) *pending {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := topicPartition{r.Topic, r.Partition}
	p := o.parts[key]
	if p == nil {
		p = &partitionOffsets{}
		o.parts[key] = p
	}
	pr := &pending{rec: r, part: p}
	p.queue = append(p.queue, pr)
	p.inflight.Add(1)
	return pr
}

// finish reports that work on a record stopped. A record that was not
// handled (work cut short at shutdown) holds back every later record of its
// partition, so Kafka delivers them all again. finish returns the record up
// to which the partition may now be marked, or nil.
func (o *offsets) finish(pr *pending, handled bool) *kgo.Record {
	defer pr.part.inflight.Done()
	o.mu.Lock()
	defer o.mu.Unlock()
	pr.handled = handled
	p := pr.part
	var last *kgo.Record
	for len(p.queue) > 0 && p.queue[0].handled {
		last = p.queue[0].rec
		p.queue = p.queue[1:]
	}
	return last
}

// forget stops tracking the given partitions and returns a channel closed
// once every record of theirs still in flight has finished.
func (o *offsets) forget(partitions map[string][]int32) <-chan struct{} {
	o.mu.Lock()
	var waits []*partitionOffsets
	for topic, ps := range partitions {
		for _, p := range ps {
			key := topicPartition{topic, p}
			if po := o.parts[key]; po != nil {
				waits = append(waits, po)
				delete(o.parts, key)
			}
		}
	}
	o.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for _, w := range waits {
			w.inflight.Wait()
		}
		close(done)
	}()
	return done
}
