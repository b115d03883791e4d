package rule

import (
	"fmt"
	"strings"
	"testing"
)

func TestPointLookupCache(t *testing.T) {
	r, err := New(WithRules(Spec{ID: "a", Condition: "p.a > 1", Actions: []ActionSpec{{Type: ActionLog, Message: "x"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	set := r.cur.Load()
	id1 := "p.a"
	id2 := strings.Clone(id1) // same text, another address
	for _, id := range []string{id1, id2, id1, id2} {
		if s, ok := r.lookup(set, id); !ok || s != set.slots.index["p.a"] {
			t.Fatalf("lookup(%q) = %d, %v", id, s, ok)
		}
	}
	unknown := "p.b"
	if _, ok := r.lookup(set, unknown); ok {
		t.Fatal("p.b found")
	}
	if _, ok := r.lookup(set, unknown); ok {
		t.Fatal("p.b found from the cache")
	}
	// a reload that adds p.b makes the negative entry stale
	if err := r.Add(Spec{ID: "b", Condition: "p.b > 1", Actions: []ActionSpec{{Type: ActionLog, Message: "x"}}}); err != nil {
		t.Fatal(err)
	}
	set2 := r.cur.Load()
	if s, ok := r.lookup(set2, unknown); !ok || s != set2.slots.index["p.b"] {
		t.Fatalf("after reload lookup(p.b) = %d, %v", s, ok)
	}
	// many distinct strings: the table grows, then clears at its limit, and stays correct
	for i := range 3 * pcacheMax / 2 {
		id := fmt.Sprintf("x%d.v", i)
		if _, ok := r.lookup(set2, id); ok {
			t.Fatalf("%s found", id)
		}
	}
	if r.pcache.n*2 > len(r.pcache.e) || len(r.pcache.e) > pcacheMax {
		t.Fatalf("table %d entries of %d", r.pcache.n, len(r.pcache.e))
	}
	if s, ok := r.lookup(set2, id2); !ok || s != set2.slots.index["p.a"] {
		t.Fatalf("lookup(p.a) after clearing = %d, %v", s, ok)
	}
}
