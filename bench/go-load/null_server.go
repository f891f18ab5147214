package main

import (
	"context"
	"fmt"
	"net"
	"os"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

// nullKV answers every KV request at once with a response holding only a header: no store, no
// Raft, no disk. A one-client put against it is the round trip this machine's gRPC stack and
// clientv3 cost before a server does any work, the floor under any real server's put latency.
type nullKV struct {
	// Methods this server does not answer (Compact) fall through to the nil embedded
	// interface; none of the load generator's ops use them.
	pb.KVServer
}

var nullHeader = &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: 1, RaftTerm: 1}

func (nullKV) Range(context.Context, *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{Header: nullHeader}, nil
}

func (nullKV) Put(context.Context, *pb.PutRequest) (*pb.PutResponse, error) {
	return &pb.PutResponse{Header: nullHeader}, nil
}

func (nullKV) Txn(_ context.Context, request *pb.TxnRequest) (*pb.TxnResponse, error) {
	responses := make([]*pb.ResponseOp, len(request.Success))
	for i := range responses {
		responses[i] = &pb.ResponseOp{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{}}}
	}
	return &pb.TxnResponse{Header: nullHeader, Succeeded: true, Responses: responses}, nil
}

// serveNull listens on address (port 0 picks a free one), prints the address it got as one line
// on stdout, and serves nullKV until the process is killed.
func serveNull(address string) error {
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	server := grpc.NewServer()
	pb.RegisterKVServer(server, nullKV{})
	fmt.Fprintln(os.Stdout, listener.Addr().String())
	return server.Serve(listener)
}
