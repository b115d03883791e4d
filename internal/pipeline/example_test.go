package pipeline_test

import (
	"context"
	"fmt"

	"github.com/voltage-ems/ems/internal/pipeline"
	"github.com/voltage-ems/ems/model"
)

// A Block consumer sees every batch; Close drains the queue first.
func Example() {
	var total int
	c := &pipeline.Consumer{Name: "history", Policy: pipeline.Block, Size: 8, Samples: true,
		Handle: func(_ context.Context, b *pipeline.Batch) { total += len(b.Samples) }}
	p := pipeline.New(c)
	p.Start(context.Background())
	for i := 0; i < 3; i++ {
		b := pipeline.NewBatch(2)
		b.Samples = append(b.Samples, model.Sample{Point: "a", Value: 1}, model.Sample{Point: "b", Value: 2})
		_ = p.Publish(context.Background(), b)
	}
	p.Close()
	st := c.Stats()
	fmt.Println(total, st.Processed, st.Dropped)
	// Output: 6 6 0
}
