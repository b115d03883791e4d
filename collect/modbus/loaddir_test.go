package modbus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voltage-ems/ems/model"
)

// The example's channel directories load through model's CSV loaders and
// validate.
func TestLoadDirExample(t *testing.T) {
	for _, ch := range []string{"pcs", "bms"} {
		cfg, err := LoadDir(filepath.Join("..", "..", "examples", "modbus", ch))
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		c, err := New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		if len(c.Points()) != len(cfg.Points) || len(c.Points()) < 8 {
			t.Errorf("%s: %d points", ch, len(c.Points()))
		}
		pt := cfg.PointTable()
		if err := pt.Validate(); err != nil || pt.Channel != ch {
			t.Errorf("%s: point table %v", ch, err)
		}
		for _, id := range c.Points() {
			if _, ok := pt.Lookup(id); !ok {
				t.Errorf("%s: %s not in the point table", ch, id)
			}
		}
		c.Close()
	}
}

// A bad mapping CSV is reported with file, line and column.
func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"channel.yaml":          "channel: x\naddress: 127.0.0.1:502\n",
		"telemetry.csv":         "point_id,signal_name,scale,offset,data_type\n1,a,1,0,uint16\n2,b,1,0,float32\n",
		"telemetry_mapping.csv": "point_id,slave_id,function_code,register_address,data_type,byte_order\n1,1,3,0,uint16,\n2,1,3,65535,float32,ABCD\n",
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := LoadDir(dir)
	es := model.AsConfigErrors(err)
	if len(es) != 1 || !strings.HasSuffix(es[0].File, "telemetry_mapping.csv") || es[0].Line != 3 || es[0].Column != 4 || es[0].Field != "register_address" {
		t.Errorf("%v", err)
	}
}
