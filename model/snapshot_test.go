package model

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSnapshotGetRange(t *testing.T) {
	s := NewSnapshot()
	if _, ok := s.Get("a"); ok {
		t.Fatal("empty snapshot has a value")
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	s.Update([]Sample{{Point: "a", Value: 1, Time: t0}, {Point: "b", Value: 2, Time: t0, Quality: Bad(ReasonCommFailure)}, {Point: "a", Value: 3, Time: t0.Add(time.Second)}})
	got, ok := s.Get("a")
	if !ok || got.Value != 3 || !got.Time.Equal(t0.Add(time.Second)) || got.Point != "a" {
		t.Fatalf("a = %+v", got)
	}
	if b, _ := s.Get("b"); b.Quality != Bad(ReasonCommFailure) {
		t.Fatalf("b quality = %v", b.Quality)
	}
	s.Declare([]string{"c"})
	if _, ok := s.Get("c"); ok {
		t.Fatal("declared point without value is visible")
	}
	n := 0
	s.Range(func(Sample) bool { n++; return true })
	if n != 2 || s.Len() != 2 {
		t.Fatalf("range saw %d, len %d; want 2", n, s.Len())
	}
	if p := s.Points(); len(p) != 2 || p[0] != "a" || p[1] != "b" {
		t.Fatalf("points = %v", p)
	}
}

// TestSnapshotNoTornReads writes samples whose value equals their time in
// seconds while readers check every read is consistent.
func TestSnapshotNoTornReads(t *testing.T) {
	s := NewSnapshot()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if smp, ok := s.Get("p"); ok && float64(smp.Time.Unix()) != smp.Value {
					t.Errorf("torn read: %+v", smp)
					return
				}
			}
		}()
	}
	batch := make([]Sample, 1)
	for i := 0; i < 20000; i++ {
		batch[0] = Sample{Point: "p", Value: float64(i), Time: time.Unix(int64(i), 0)}
		s.Update(batch)
	}
	close(stop)
	wg.Wait()
}

func TestSubscriptionDropOldest(t *testing.T) {
	s := NewSnapshot()
	sub := s.Subscribe("pcs1.", 3)
	other := s.Subscribe("bms*.soc", 10)
	for i := 0; i < 10; i++ {
		s.Update([]Sample{{Point: "pcs1.p", Value: float64(i)}, {Point: "bms1.soc", Value: float64(i)}, {Point: "pcs2.p"}})
	}
	if d := sub.Dropped(); d != 7 {
		t.Fatalf("dropped = %d, want 7", d)
	}
	for want := 7.0; want < 10; want++ {
		if got := <-sub.C(); got.Value != want || got.Point != "pcs1.p" {
			t.Fatalf("got %+v, want value %g (newest kept)", got, want)
		}
	}
	if len(other.C()) != 10 || other.Dropped() != 0 {
		t.Fatalf("other got %d dropped %d", len(other.C()), other.Dropped())
	}
	sub.Close()
	sub.Close()
	s.Update([]Sample{{Point: "pcs1.p", Value: 99}})
	if _, open := <-sub.C(); open {
		t.Fatal("closed subscription still delivers")
	}
	other.Close()
}

func TestMatchPoint(t *testing.T) {
	tests := []struct {
		pattern, point string
		want           bool
	}{
		{"", "x", true}, {"*", "a.b.c", true},
		{"pcs1.", "pcs1.power", true}, {"pcs1.", "pcs10.power", false},
		{"pcs*.power", "pcs12.power", true}, {"pcs*.power", "pcs1.soc", false},
		{"*.soc", "bms1.soc", true}, {"bms?.soc", "bms1.soc", true}, {"bms?.soc", "bms10.soc", false},
		{"exact.point", "exact.point", true}, {"exact.point", "exact.pointx", false},
		{"ch1.T.**", "ch1.T.7", true}, {"[", "[", false},
	}
	for _, tt := range tests {
		if got := MatchPoint(tt.pattern, tt.point); got != tt.want {
			t.Errorf("MatchPoint(%q, %q) = %v, want %v", tt.pattern, tt.point, got, tt.want)
		}
	}
	if ValidPattern("[") || !ValidPattern("a*") {
		t.Error("ValidPattern wrong")
	}
}

func BenchmarkSnapshotUpdate(b *testing.B) {
	s := NewSnapshot()
	batch := make([]Sample, 1000)
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = fmt.Sprintf("dev%d.p%d", i/10, i%10)
	}
	s.Declare(ids)
	i := 0
	for b.Loop() {
		for j := range batch {
			batch[j] = Sample{Point: ids[(i+j)%len(ids)], Value: float64(j)}
		}
		i += len(batch)
		s.Update(batch)
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "samples/s")
}
