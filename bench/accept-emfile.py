#!/usr/bin/env python3
# Out of file descriptors: a sidecar under prlimit --nofile=64 with 80 waiting connections;
# prints its CPU per second and, with a second argument, 3 s of strace -c.
# Usage: sudo bench/accept-emfile.py PATH/TO/weft-proxy [strace]   (root; makes and deletes netns weft-emf)
import os, sys, subprocess, time, socket
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "e2e"))
from weft_e2e import ns_connect
ns = "weft-emf"
ADDR = "10.217.0.1"
def sh(*a): subprocess.run(a, check=True, capture_output=True)
subprocess.run(["ip","netns","del",ns], capture_output=True)
sh("ip","netns","add",ns); sh("ip","-n",ns,"link","set","lo","up")
sh("ip","-n",ns,"link","add","d0","type","veth","peer","name","d1")
sh("ip","-n",ns,"addr","add",ADDR+"/24","dev","d0"); sh("ip","-n",ns,"link","set","d0","up"); sh("ip","-n",ns,"link","set","d1","up")
sh("ip","netns","exec",ns,sys.argv[1],"init")
srv = subprocess.Popen(["ip","netns","exec",ns,sys.executable,"-m","http.server","--bind",ADDR,"8090"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
p = subprocess.Popen(["ip","netns","exec",ns,"prlimit","--nofile=64:64","setpriv","--reuid=2102","--regid=2102","--clear-groups",sys.argv[1],"run","--log-level","info"], stdout=open("/tmp/emf.log","wb"), stderr=subprocess.STDOUT)
time.sleep(2)
cs = [ns_connect(ns, ADDR, 8090) for _ in range(80)]
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")",1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
for i in range(5):
    a = cpu(p.pid); time.sleep(1); print("cpu/s", cpu(p.pid)-a, "fds", len(os.listdir("/proc/%d/fd" % p.pid)))
if len(sys.argv) > 2:
    subprocess.run(["timeout","3","strace","-c","-f","-p",str(p.pid)])
for c in cs: c.close()
p.kill(); srv.kill(); time.sleep(0.5)
subprocess.run(["ip","netns","del",ns])
