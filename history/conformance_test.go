package history_test

import (
	"testing"
	"time"

	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/history/historytest"
)

func TestConformance(t *testing.T) {
	for name, dir := range map[string]func(*testing.T) string{
		"memory": func(*testing.T) string { return "" },
		"disk":   func(t *testing.T) string { return t.TempDir() },
	} {
		t.Run(name, func(t *testing.T) {
			historytest.Run(t, func(t *testing.T) history.Store {
				db, err := history.Open(dir(t), history.WithOutOfOrderWindow(2*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := db.Close(); err != nil {
						t.Error(err)
					}
				})
				return db
			})
		})
	}
}
