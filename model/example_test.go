package model_test

import (
	"fmt"
	"strings"

	"github.com/voltage-ems/ems/model"
)

func ExampleParsePointCSV() {
	csv := `point_id,signal_name,unit,scale,offset,reverse,data_type
1,active_power,kW,0.1,-3000,false,int32
2,temperature,degC,0.1,-40,false,int16
`
	pts, err := model.ParsePointCSV(strings.NewReader(csv), "telemetry.csv", model.Telemetry)
	if err != nil {
		fmt.Println(err)
		return
	}
	p := pts[0]
	fmt.Println(p.Name, p.Engineering(35000), p.Unit)

	_, err = model.ParsePointCSV(strings.NewReader("point_id,signal_name,unit,scale,offset,reverse,data_type\n1,x,V,0,0,false,uint16\n"), "telemetry.csv", model.Telemetry)
	fmt.Println(err)
	// Output:
	// active_power 500 kW
	// telemetry.csv:2:4: scale "0": scale must not be 0
}

func ExampleSnapshot_Subscribe() {
	s := model.NewSnapshot()
	sub := s.Subscribe("bms*.soc", 2)
	defer sub.Close()
	s.Update([]model.Sample{{Point: "bms1.soc", Value: 50}, {Point: "pcs1.power", Value: 10}, {Point: "bms1.soc", Value: 51}, {Point: "bms2.soc", Value: 70}})
	fmt.Println(len(sub.C()), "queued,", sub.Dropped(), "dropped")
	fmt.Println((<-sub.C()).Value, (<-sub.C()).Value)
	// Output:
	// 2 queued, 1 dropped
	// 51 70
}

func ExampleQuality() {
	q := model.Bad(model.ReasonCommFailure)
	fmt.Println(q, q.IsGood(), model.Good)
	// Output: bad:comm_failure false good
}
