#!/bin/bash
# One-shot workload: prints a known line and some facts, then exits 0.
echo "hello from $(cat /etc/agenttype-testimage) on $(hostname)"
echo "args: $*"
echo "uid: $(id -u)"
