package codec_test

import (
	"fmt"

	"github.com/voltage-ems/ems/history/internal/codec"
)

func ExampleEncode() {
	c := &codec.Columns{
		T: []int64{1_700_000_000_000, 1_700_000_001_000, 1_700_000_002_000},
		V: []float64{12.3, 12.4, 12.4},
		Q: []uint8{0, 0, 0},
	}
	b, k, err := codec.Encode(nil, c, codec.Options{})
	if err != nil {
		panic(err)
	}
	back, _, _, err := codec.Decode(b)
	fmt.Println(k, back.V, err)
	// Output: delta [12.3 12.4 12.4] <nil>
}
