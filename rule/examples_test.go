package rule_test

import (
	"testing"

	"github.com/voltage-ems/ems/rule/ruletest"
)

// TestExampleRules runs the YAML test cases of the shipped example rules.
func TestExampleRules(t *testing.T) {
	ruletest.RunFile(t, "testdata/site_cases.yaml")
}
