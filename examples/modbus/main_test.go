package main

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The example runs against its emulator, prints both devices' values with
// good quality, and the setpoint write is verified by read-back.
func TestExample(t *testing.T) {
	var out strings.Builder
	err := run(context.Background(), []string{"-for", "2500ms", "-print", "400ms", "-set", "pcs.A.1=-120.5"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"pcs.T.3", "active_power", "bms.T.3", "soc", "bms.S.1", "event: command.executed pcs.A.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "bad:") || strings.Contains(s, "write pcs.A.1") {
		t.Errorf("bad quality or failed write:\n%s", s)
	}
	// After the write the PCS ramps toward -120.5 kW (charging): the last
	// printed active power is negative.
	blocks := strings.Split(s, "---")
	last := blocks[len(blocks)-1]
	for _, line := range strings.Split(last, "\n") {
		if strings.HasPrefix(line, "pcs.T.3 ") && !strings.Contains(line, " -") {
			t.Errorf("active power did not follow the setpoint: %q", line)
		}
	}
}
