package client

import (
	"testing"
	"time"
)

func TestRenewAfter(t *testing.T) {
	for _, tt := range []struct {
		left, want time.Duration
	}{
		{time.Hour, 48 * time.Minute},          // 80% comes first
		{10 * time.Minute, 8 * time.Minute},    // still 80%
		{2 * time.Minute, 90 * time.Second},    // 30 s before expiry comes first
		{150 * time.Second, 120 * time.Second}, // both at once
		{60 * time.Second, 30 * time.Second},   // 30 s before expiry, which is also half
		{40 * time.Second, 20 * time.Second},   // never before half the lifetime
		{2 * time.Second, time.Second},         // short tokens: half
		{10 * time.Millisecond, 5 * time.Millisecond},
		{0, 0},
		{-time.Second, 0},
	} {
		if got := renewAfter(tt.left); got != tt.want {
			t.Errorf("renewAfter(%s) = %s, want %s", tt.left, got, tt.want)
		}
	}
}
