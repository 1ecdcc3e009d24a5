// Command etcd is upstream etcd's server entry point, built from the Go module proxy so the
// node image needs no registry. kubeadm runs it as `etcd --flags...` in a static pod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
