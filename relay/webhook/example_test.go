package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/voltage-ems/ems/relay"
	"github.com/voltage-ems/ems/relay/webhook"
)

func Example() {
	key := []byte("shared secret")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := webhook.Verify(key, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, 5*time.Minute, time.Now())
		fmt.Printf("signature ok: %v\nbody: %s", err == nil, body)
	}))
	defer srv.Close()

	a, err := webhook.New(srv.URL, webhook.WithSecret(key), webhook.WithTimeout(5*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = a.Send(context.Background(), []relay.Message{
		{Kind: relay.KindSample, Point: "a.b", Payload: []byte(`{"point":"a.b","value":1}`)},
		{Kind: relay.KindSample, Point: "a.c", Payload: []byte(`{"point":"a.c","value":2}`)},
	})
	fmt.Println("send error:", err)
	// Output:
	// signature ok: true
	// body: {"point":"a.b","value":1}
	// {"point":"a.c","value":2}
	// send error: <nil>
}
