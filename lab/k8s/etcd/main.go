// The etcd server binary, built from go.etcd.io/etcd/server/v3 at the release Kubernetes pins
// (build/dependencies.yaml), the way etcd's own main package calls it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
