package historytest_test

import (
	"fmt"
	"testing"

	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/history/historytest"
)

// Run the suite from a test of your own store.
func ExampleRun() {
	test := func(t *testing.T) {
		historytest.Run(t, func(t *testing.T) history.Store {
			db, err := history.Open("")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		})
	}
	fmt.Println(test != nil)
	// Output: true
}
