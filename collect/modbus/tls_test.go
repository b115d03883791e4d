package modbus

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	sv "github.com/simonvetter/modbus"

	"github.com/voltage-ems/ems/model"
)

// certPair makes a certificate signed by parent (self-signed when parent is
// nil) and returns it with its PEM encodings.
func certPair(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// Modbus/TCP security: the collector reads through a TLS server that
// requires a client certificate, with CA, certificate and key from files.
func TestTLS(t *testing.T) {
	ca, caKey, caPEM, _ := certPair(t, "test ca", nil, nil, true)
	_, _, srvPEM, srvKeyPEM := certPair(t, "server", ca, caKey, false)
	_, _, cliPEM, cliKeyPEM := certPair(t, "client", ca, caKey, false)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvCert, err := tls.X509KeyPair(srvPEM, srvKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	dev := newTestDevice(1)
	dev.setHR(1, 4, regs(321))
	addr := freePort(t)
	srv, err := sv.NewServer(&sv.ServerConfiguration{URL: "tcp+tls://" + addr, TLSServerCert: &srvCert, TLSClientCAs: pool,
		Logger: log.New(io.Discard, "", 0)}, dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })

	var tb table
	tb.add(t, model.Point{ID: 1, Kind: model.Telemetry}, "slave_id", "1", "function_code", "3", "register_address", "4")
	cfg := baseConfig(addr, &tb)
	cfg.TLS = &TLSConfig{CAFile: write("ca.pem", caPEM), CertFile: write("client.pem", cliPEM), KeyFile: write("client.key", cliKeyPEM)}
	c, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	sink := newRecSink()
	run(t, c, sink)
	sink.waitFor(t, wait, "value over TLS", func(get func(string) (model.Sample, bool)) bool {
		s, ok := get("pcs.T.1")
		return ok && s.Quality.IsGood() && s.Value == 321
	})

	// A missing key file is a located config error from New.
	cfg.TLS = &TLSConfig{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: filepath.Join(dir, "nope.key")}
	if _, err := New(cfg); len(model.AsConfigErrors(err)) != 1 || model.AsConfigErrors(err)[0].Field != "tls.cert_file" {
		t.Errorf("bad TLS files: %v", err)
	}
}
