package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPercentilesAreNearestRankOverTheSortedSamples(t *testing.T) {
	samples := []int64{}
	for i := int64(1000); i >= 1; i-- {
		samples = append(samples, i)
	}
	got := summariseLatencies(samples)
	want := latencySummary{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000, Mean: 501}
	if got != want {
		t.Fatalf("expected %+v, saw %+v", want, got)
	}
	if empty := summariseLatencies(nil); empty != (latencySummary{}) {
		t.Fatalf("expected zeros for no samples, saw %+v", empty)
	}
}

func TestKeysArePaddedAndTruncatedLikeTheNodeClient(t *testing.T) {
	cases := map[string]string{formatKey(42, 8): "00000042", formatKey(123456, 3): "456", formatKey(0, 1): "0"}
	for got, want := range cases {
		if got != want {
			t.Fatalf("expected %q, saw %q", want, got)
		}
	}
}

func TestErrorKindsUseGrpcWireNamesAndStopGrowingAtTheLimit(t *testing.T) {
	if kind := errorKind(status.Error(codes.DeadlineExceeded, "slow")); kind != "DEADLINE_EXCEEDED: slow" {
		t.Fatalf("expected DEADLINE_EXCEEDED: slow, saw %q", kind)
	}
	counts := newErrorCounts(2)
	for _, message := range []string{"a", "b", "c", "a", "d"} {
		counts.add(errors.New(message))
	}
	kinds, total := counts.snapshot()
	if total != 5 || kinds["a"] != 2 || kinds["b"] != 1 || kinds["other"] != 2 {
		t.Fatalf("expected a=2 b=1 other=2 of 5, saw %v of %d", kinds, total)
	}
}

func TestTxnKeysAreConsecutiveIndexesWrappingAtTheKeySpace(t *testing.T) {
	got := strings.Join(consecutiveKeys(97, 5, 100, 3), ",")
	if want := "097,098,099,000,001"; got != want {
		t.Fatalf("expected %s, saw %s", want, got)
	}
	if single := consecutiveKeys(1234, 1, 10_000, 8); len(single) != 1 || single[0] != "00001234" {
		t.Fatalf("expected [00001234], saw %v", single)
	}
}

func TestTxnOpsMustFitInTheKeySpaceWithoutTruncatedKeys(t *testing.T) {
	cases := map[string]bool{
		"--op txn-put --txn-ops 8 --key-space 100":               true,
		"--op txn-put --txn-ops 100 --key-space 100":             true,
		"--op txn-put --txn-ops 0":                               false,
		"--op txn-put --txn-ops 101 --key-space 100":             false,
		"--op txn-put --txn-ops 2 --key-space 1000 --key-size 2": false,
		"--op put --txn-ops 1 --key-space 1000 --key-size 2":     true,
		"--op txn-put --txn-ops 1 --key-space 1000 --key-size 2": true,
		"--op txn-put --txn-ops 2 --key-space 100 --key-size 2":  true,
		"--op delete --txn-ops 2 --key-space 100 --key-size 2":   false,
	}
	for args, valid := range cases {
		_, err := parseOptions(strings.Fields(args))
		if (err == nil) != valid {
			t.Fatalf("expected %q valid=%v, saw error %v", args, valid, err)
		}
	}
}

func TestPercentileListIsAtTheReportedPercentilesAndNeverDecreases(t *testing.T) {
	samples := make([]int64, 0, 100_000)
	for i := int64(1); i <= 100_000; i++ {
		samples = append(samples, i)
	}
	points := latencyPercentiles(samples)
	if len(points) != len(reportedPercentiles) {
		t.Fatalf("expected %d points, saw %d", len(reportedPercentiles), len(points))
	}
	want := map[float64]int64{0: 1, 50: 50_000, 99.9: 99_900, 99.999: 99_999, 100: 100_000}
	for i, point := range points {
		if point.Percentile != reportedPercentiles[i] {
			t.Fatalf("expected percentile %v at %d, saw %v", reportedPercentiles[i], i, point.Percentile)
		}
		if i > 0 && point.Us < points[i-1].Us {
			t.Fatalf("expected latencies never to decrease, saw %+v", points)
		}
		if us, ok := want[point.Percentile]; ok && point.Us != us {
			t.Fatalf("expected %d us at %v%%, saw %d", us, point.Percentile, point.Us)
		}
	}
	if empty := latencyPercentiles(nil); len(empty) != len(reportedPercentiles) || empty[len(empty)-1].Us != 0 {
		t.Fatalf("expected zeros at every percentile for no samples, saw %+v", empty)
	}
}

func TestPacedSlotsAreEvenAndAStallIsNotMadeUp(t *testing.T) {
	start := time.Unix(1_000, 0)
	p := newPacer(10, start)
	var got []time.Duration
	for _, offset := range []time.Duration{0, 0, 50 * time.Millisecond, 5 * time.Second, 5 * time.Second} {
		got = append(got, p.reserve(start.Add(offset)).Sub(start))
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 5 * time.Second, 5100 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("expected slots at %v, saw %v", want, got)
		}
	}
}

func TestRateMustBeNonNegative(t *testing.T) {
	if _, err := parseOptions([]string{"--rate", "-1"}); err == nil {
		t.Fatalf("expected --rate -1 to be refused")
	}
	if o, err := parseOptions([]string{"--rate", "50"}); err != nil || o.rate != 50 {
		t.Fatalf("expected --rate 50 accepted, saw %v (%d)", err, o.rate)
	}
}
