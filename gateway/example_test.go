package gateway_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"

	"github.com/voltage-ems/ems/gateway"
	"github.com/voltage-ems/ems/model"
)

func ExampleNew() {
	snap := model.NewSnapshot()
	snap.Update([]model.Sample{{Point: "pcs1.active_power", Value: 42.5}})

	gw, err := gateway.New(
		gateway.WithPoints(snap),
		gateway.WithAPIKey("dashboard", "a-long-random-dashboard-key", gateway.RoleViewer),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	// *gateway.Server is an http.Handler: mount it in any mux, or call
	// gw.Run(ctx, ":8080").
	req := httptest.NewRequest("GET", "/api/v1/points/pcs1.active_power", nil)
	req.Header.Set("X-API-Key", "a-long-random-dashboard-key")
	w := httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	body, _ := io.ReadAll(w.Body)
	fmt.Println(w.Code, strings.Contains(string(body), `"value":42.5`))

	req = httptest.NewRequest("GET", "/api/v1/points/pcs1.active_power", nil)
	w = httptest.NewRecorder()
	gw.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
	// Output:
	// 200 true
	// 401 Bearer realm="ems"
}

func ExampleStatusOf() {
	err := &model.CommandError{Point: "pcs1.power_setpoint", Value: 500, Err: model.ErrOutOfRange}
	fmt.Println(gateway.StatusOf(err))
	// Output: 422 out_of_range
}
