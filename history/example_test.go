package history_test

import (
	"context"
	"fmt"
	"time"

	"github.com/voltage-ems/ems/history"
	"github.com/voltage-ems/ems/model"
)

func Example() {
	db, err := history.Open("") // in memory; pass a directory for a durable store
	if err != nil {
		panic(err)
	}
	defer db.Close()
	ctx := context.Background()

	start := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	var batch []model.Sample
	for i := range 180 { // three minutes of SOC at 1 s
		batch = append(batch, model.Sample{Point: "bms1.soc", Value: 50 + float64(i/60), Time: start.Add(time.Duration(i) * time.Second)})
	}
	if err := db.Write(ctx, batch); err != nil {
		panic(err)
	}

	res, err := db.Query(ctx, history.Query{
		Points: []string{"bms*.soc"},
		From:   start,
		To:     start.Add(time.Hour),
		Step:   time.Minute,
		Agg:    history.AggAvg,
	})
	if err != nil {
		panic(err)
	}
	for _, s := range res {
		for _, p := range s.Points {
			fmt.Printf("%s +%s avg %.1f\n", s.Point, p.Time.Sub(start), p.Value)
		}
	}
	// Output:
	// bms1.soc +0s avg 50.0
	// bms1.soc +1m0s avg 51.0
	// bms1.soc +2m0s avg 52.0
}

func ExampleQuery_Validate() {
	now := time.Now()
	err := history.Query{Points: []string{"pcs1.p"}, From: now, To: now.Add(-time.Hour)}.Validate()
	fmt.Println(err != nil)
	_, err = history.ParseAggregation("median")
	fmt.Println(err)
	// Output:
	// true
	// history: invalid query: aggregation "median": must be one of raw, avg, min, max, sum, count, first, last
}
