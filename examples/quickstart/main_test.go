package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestQuickstart runs the whole site for two simulated minutes of fake
// time: the status line must show live values, the low-SOC alarm and the
// grid-import alarm must fire, and the low-SOC rule must stop the
// discharge. Then the program must stop cleanly. The MQTT uplink is off:
// real sockets do not run on a synctest bubble's fake clock (relay/mqtt
// tests it against the same in-process broker).
func TestQuickstart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), &out, 2*time.Minute, 10*time.Second, "", "", "", false); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		for _, want := range []string{
			"samples/s  SOC",
			"alarm.raised    medium   Battery SOC",
			"alarm.raised    medium   Grid import",
			"rule.fired      high     SOC",
			"history of bat1.soc (avg per 10 s): 24.9 22.4",
			"stopped after 2m0s",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("output lacks %q:\n%s", want, got)
			}
		}
		if strings.Contains(got, "command.failed") {
			t.Errorf("a command failed:\n%s", got)
		}
	})
}
