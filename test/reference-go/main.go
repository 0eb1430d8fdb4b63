// refparse: the reference implementation's answer for each line of stdin, one JSON object per line, for the
// differential test in test/image-reference-differential.test.ts.
package main

import (
	"bufio"
	_ "crypto/sha256" // the digest algorithms docker, containerd and the kubelet link
	_ "crypto/sha512"
	"encoding/json"
	"os"

	"github.com/distribution/reference"
)

type answer struct {
	OK     bool   `json:"ok"`
	Domain string `json:"domain,omitempty"`
	Path   string `json:"path,omitempty"`
	Tag    string `json:"tag,omitempty"`
	Digest string `json:"digest,omitempty"`
	Error  string `json:"error,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var s string
		if err := json.Unmarshal(in.Bytes(), &s); err != nil {
			panic(err)
		}
		named, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			_ = enc.Encode(answer{Error: err.Error()})
			continue
		}
		a := answer{OK: true, Domain: reference.Domain(named), Path: reference.Path(named)}
		if t, ok := named.(reference.Tagged); ok {
			a.Tag = t.Tag()
		}
		if d, ok := named.(reference.Digested); ok {
			a.Digest = d.Digest().String()
		}
		_ = enc.Encode(a)
	}
}
