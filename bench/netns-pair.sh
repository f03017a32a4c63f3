# Sourced by bench/profile.sh and bench/order-file.sh: two network namespaces, a client
# pod and a server pod, joined by a veth pair, loopback up in both.
# Usage: netns_pair CLIENT_NS SERVER_NS PREFIX /24-NETWORK   (e.g. c s pc 10.214.0)
# The client gets NETWORK.1 and the server NETWORK.2. The caller deletes the namespaces.
netns_pair() {
  local c=$1 s=$2 dev=$3 net=$4
  ip netns add "$c"; ip netns add "$s"
  ip link add "${dev}c$$" type veth peer name "${dev}s$$"
  ip link set "${dev}c$$" netns "$c"; ip link set "${dev}s$$" netns "$s"
  ip -n "$c" addr add "$net.1/24" dev "${dev}c$$"; ip -n "$s" addr add "$net.2/24" dev "${dev}s$$"
  for ns in "$c" "$s"; do ip -n "$ns" link set lo up; done
  ip -n "$c" link set "${dev}c$$" up; ip -n "$s" link set "${dev}s$$" up
}
