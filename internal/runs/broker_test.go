package runs

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/omserver/omserver-go/internal/task"
)

func resultEvent(ip string) task.Event {
	return task.Event{Type: task.EventResult, Result: &task.HostResult{Host: task.Host{IP: ip}, Status: task.StatusOK}}
}

func TestBrokerSlowSubscriberNeverBlocks(t *testing.T) {
	b := newBroker()
	slow := b.subscribe()
	fast := b.subscribe()
	pub := func(i int) { b.publish(resultEvent(strconv.Itoa(i))) }
	for i := range SubscriberBuffer {
		pub(i)
	}
	for range SubscriberBuffer {
		<-fast.C // the fast reader keeps up; the slow one reads nothing
	}
	pub(SubscriberBuffer) // does not block although slow's buffer is full
	if r := <-fast.C; r.Result.Host.IP != strconv.Itoa(SubscriberBuffer) {
		t.Fatalf("fast got %+v", r)
	}
	b.finish(End{Status: task.RunDone})
	if _, open := <-fast.C; open {
		t.Fatal("fast subscriber still open after the end")
	}
	if end, ok := fast.End(); !ok || end.Status != task.RunDone || fast.Lagged() {
		t.Fatalf("fast subscriber: end %+v %v lagged %v", end, ok, fast.Lagged())
	}
	// The slow one was cut loose with what fitted (it resynchronises from the store).
	n := 0
	for range slow.C {
		n++
	}
	if _, ended := slow.End(); !slow.Lagged() || ended || n != SubscriberBuffer {
		t.Fatalf("slow subscriber: lagged=%v ended=%v after %d results", slow.Lagged(), ended, n)
	}
	late := b.subscribe()
	if _, open := <-late.C; open {
		t.Fatal("subscribing to an ended run delivered a result")
	}
	if end, ok := late.End(); !ok || end.Status != task.RunDone {
		t.Fatal("late subscriber did not get the end")
	}
}

// BenchmarkSSEFanout measures one host result going from the run to N live
// subscribers, each drained by its own goroutine (as each SSE stream is):
// an iteration ends when every subscriber has it.
func BenchmarkSSEFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run("subscribers="+strconv.Itoa(n), func(b *testing.B) {
			br := newBroker()
			var got sync.WaitGroup
			var drained sync.WaitGroup
			subs := make([]*Subscription, n)
			for i := range n {
				subs[i] = br.subscribe()
				drained.Add(1)
				go func(sub *Subscription) {
					defer drained.Done()
					for range sub.C {
						got.Done()
					}
				}(subs[i])
			}
			res := task.HostResult{Host: task.Host{IP: "10.0.0.1", Name: "h"}, Status: task.StatusOK, Stdout: strings.Repeat("x", 512)}
			ev := task.Event{Seq: 1, Type: task.EventResult, Result: &res}
			b.ReportAllocs()
			for b.Loop() {
				got.Add(n)
				br.publish(ev)
				got.Wait()
			}
			br.finish(End{Status: task.RunDone})
			drained.Wait()
			for _, sub := range subs {
				if sub.Lagged() {
					b.Fatal("a subscriber was dropped")
				}
			}
		})
	}
}
