//go:build tools

package deps

import (
	_ "github.com/coder/websocket"
	_ "github.com/dgryski/go-tsz"
	_ "github.com/eclipse/paho.mqtt.golang"
	_ "github.com/expr-lang/expr"
	_ "github.com/getkin/kin-openapi/openapi3"
	_ "github.com/gopcua/opcua"
	_ "github.com/grid-x/modbus"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/mochi-mqtt/server/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/robfig/cron/v3"
	_ "github.com/simonvetter/modbus"
	_ "github.com/sony/gobreaker/v2"
	_ "github.com/stretchr/testify/require"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "github.com/twmb/franz-go/pkg/kgo"
	_ "go.etcd.io/bbolt"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/time/rate"
)
