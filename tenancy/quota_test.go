package tenancy

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The incoming write counts: a tenant never goes over its byte quota, and
// admissions between measurements add up (the server once compared only
// the last measurement, 5 s old, and overshot 7×).
func TestQuotas_CountIncoming(t *testing.T) {
	q := NewQuotas(time.Hour, 0)
	tn := Tenant{ID: "a", MaxBytes: 1000, MaxRows: 10}
	now := time.Unix(1000, 0)
	measured := 0
	measure := func() (Usage, error) { measured++; return Usage{Rows: 2, Bytes: 100}, nil }
	admitted := int64(100)
	for range 20 {
		if err := q.Reserve(tn, 0, 200, now, measure); err != nil {
			if !errors.Is(err, ErrQuotaExceeded) {
				t.Fatal(err)
			}
			break
		}
		admitted += 200
	}
	if admitted > tn.MaxBytes {
		t.Fatalf("admitted %d bytes, quota %d", admitted, tn.MaxBytes)
	}
	if admitted != 900 {
		t.Fatalf("admitted %d bytes, want 900 (100 measured + 4 × 200)", admitted)
	}
	if measured != 1 {
		t.Fatalf("measured %d times within the TTL", measured)
	}
	if err := q.Reserve(tn, 9, 0, now, measure); !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("2 + 9 rows of 10: %v", err)
	}
	if err := q.Reserve(tn, 8, 0, now, measure); err != nil {
		t.Fatalf("2 + 8 rows of 10: %v", err)
	}
	// After the TTL the measurement replaces what was counted.
	if err := q.Reserve(tn, 0, 800, now.Add(2*time.Hour), measure); err != nil || measured != 2 {
		t.Fatalf("after the TTL: %v, measured %d", err, measured)
	}
}

// Concurrent writers of one tenant never take it over together.
func TestQuotas_Concurrent(t *testing.T) {
	q := NewQuotas(time.Hour, 0)
	tn := Tenant{ID: "a", MaxBytes: 10_000}
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	total := int64(0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if q.Reserve(tn, 0, 37, now, func() (Usage, error) { return Usage{}, nil }) == nil {
					mu.Lock()
					total += 37
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if total > tn.MaxBytes {
		t.Fatalf("admitted %d bytes together, quota %d", total, tn.MaxBytes)
	}
}

func TestQuotas_Evicts(t *testing.T) {
	q := NewQuotas(time.Hour, 50)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		q.Reserve(Tenant{ID: fmt.Sprint("t", i), MaxRows: 5}, 1, 0, now, func() (Usage, error) { return Usage{}, nil })
	}
	if n := q.Len(); n != 50 {
		t.Fatalf("Len = %d after 1,000 tenants, want 50", n)
	}
	if err := q.Reserve(Tenant{ID: "t1", MaxRows: 5}, 1, 0, now, func() (Usage, error) { return Usage{}, errors.New("down") }); err == nil {
		t.Fatal("an evicted tenant was not measured again")
	}
}
