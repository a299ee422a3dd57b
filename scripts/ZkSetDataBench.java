// ZkSetDataBench: a small closed-loop load generator for a ZooKeeper ensemble,
// used by scripts/zookeeper-bench.sh as a durable-write baseline.
//
// Each client is one ZooKeeper session (one org.apache.zookeeper.ZooKeeper
// object) connected to one member of the ensemble (round-robin over the hosts
// given in --connect). Each client creates its own znode and then overwrites it
// with setData of a fixed-size value, keeping K requests in flight:
//   K == 1: one thread per client calling the synchronous setData in a loop;
//   K  > 1: asynchronous setData, each completion issuing the next request.
// A setData is acknowledged only after the leader has had it logged (fsynced,
// with the default forceSync=yes) by a quorum, so every completed call is one
// durable replicated write.
//
// Every latency completed inside the measurement window (after the warm-up) is
// recorded in nanoseconds; at the end they are sorted and p50/p90/p99/max are
// printed with the throughput. Only the JDK and the ZooKeeper client jars are
// used.
//
// Second mode, "fsync-probe DIR COUNT [BYTES]": appends BYTES (default 4096) to
// a new file in DIR COUNT times, each followed by FileChannel.force(false),
// which is fdatasync(2) on Linux, the same call ZooKeeper's transaction log uses.
//
// Build: javac -cp /usr/share/java/zookeeper.jar -d OUT ZkSetDataBench.java
// Run:   java -cp OUT:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
//          ZkSetDataBench --connect 127.0.0.1:22181,127.0.0.1:22182 --clients 16
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public final class ZkSetDataBench {

    // ---- run phases, shared by all workers ----
    static final int WARMUP = 0;
    static final int MEASURE = 1;
    static final int STOP = 2;
    static volatile int phase = WARMUP;

    static final AtomicLong errors = new AtomicLong();
    static volatile String firstError = null;

    /** Growable array of primitive longs; each instance is written by one thread only. */
    static final class LongList {
        long[] a = new long[1 << 14];
        int n;

        void add(long v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }
    }

    static void noteError(String what) {
        errors.incrementAndGet();
        if (firstError == null) {
            firstError = what;
        }
    }

    // ---- one session ----
    static final class Client implements AsyncCallback.StatCallback {
        final int id;
        final String host;
        final String path;
        final byte[] value;
        final LongList lat = new LongList();
        final AtomicInteger inflight = new AtomicInteger();
        final CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk;

        Client(int id, String host, String path, byte[] value) {
            this.id = id;
            this.host = host;
            this.path = path;
            this.value = value;
        }

        void connect(int sessionTimeoutMs) throws IOException {
            zk = new ZooKeeper(host, sessionTimeoutMs, (WatchedEvent e) -> {
                if (e.getType() != Watcher.Event.EventType.None) {
                    return;
                }
                switch (e.getState()) {
                    case SyncConnected:
                        connected.countDown();
                        break;
                    case Disconnected:
                    case Expired:
                    case AuthFailed:
                        if (phase != STOP) {
                            noteError("client " + id + " session event " + e.getState());
                        }
                        break;
                    default:
                        break;
                }
            });
        }

        /** Closed loop with one synchronous call at a time (K == 1). */
        void runSync() {
            while (phase != STOP) {
                long t0 = System.nanoTime();
                try {
                    zk.setData(path, value, -1);
                } catch (KeeperException e) {
                    noteError("client " + id + ": " + e);
                    return; // a failed slot stops; the run is reported as failed
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
                long dt = System.nanoTime() - t0;
                if (phase == MEASURE) {
                    lat.add(dt);
                }
            }
        }

        /** Issue one asynchronous setData; the start time travels as the context. */
        void issue() {
            inflight.incrementAndGet();
            zk.setData(path, value, -1, this, System.nanoTime());
        }

        /** Completion of an asynchronous setData, on this session's event thread. */
        @Override
        public void processResult(int rc, String p, Object ctx, Stat stat) {
            long now = System.nanoTime();
            if (rc == KeeperException.Code.OK.intValue()) {
                if (phase == MEASURE) {
                    lat.add(now - (Long) ctx);
                }
                if (phase != STOP) {
                    issue(); // counted in flight before this one is counted out
                }
            } else {
                noteError("client " + id + ": " + KeeperException.Code.get(rc));
            }
            inflight.decrementAndGet();
        }
    }

    // ---- CPU accounting from /proc (Linux) ----
    static final class CpuSample {
        final long[] procTicks; // utime+stime of each watched pid
        final long machineTotal;
        final long machineIdle;
        final long machineIowait;

        CpuSample(long[] procTicks, long total, long idle, long iowait) {
            this.procTicks = procTicks;
            this.machineTotal = total;
            this.machineIdle = idle;
            this.machineIowait = iowait;
        }
    }

    static long procTicks(long pid) {
        try {
            String s = new String(Files.readAllBytes(Paths.get("/proc/" + pid + "/stat")),
                    StandardCharsets.US_ASCII);
            String[] f = s.substring(s.lastIndexOf(')') + 2).trim().split("\\s+");
            // after "pid (comm) " the fields start at field 3 (state); utime=14, stime=15
            return Long.parseLong(f[14 - 3]) + Long.parseLong(f[15 - 3]);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    static CpuSample sampleCpu(long[] pids) {
        long[] t = new long[pids.length];
        for (int i = 0; i < pids.length; i++) {
            t[i] = procTicks(pids[i]);
        }
        long total = 0, idle = 0, iowait = 0;
        try {
            for (String line : Files.readAllLines(Paths.get("/proc/stat"))) {
                if (line.startsWith("cpu ")) {
                    String[] f = line.trim().split("\\s+");
                    // cpu user nice system idle iowait irq softirq steal [guest guest_nice]
                    for (int i = 1; i <= Math.min(8, f.length - 1); i++) {
                        total += Long.parseLong(f[i]);
                    }
                    idle = Long.parseLong(f[4]);
                    iowait = Long.parseLong(f[5]);
                    break;
                }
            }
        } catch (IOException | RuntimeException e) {
            total = -1;
        }
        return new CpuSample(t, total, idle, iowait);
    }

    // ---- statistics ----
    static long percentile(long[] sorted, double p) {
        if (sorted.length == 0) {
            return 0;
        }
        int rank = (int) Math.ceil(p / 100.0 * sorted.length); // nearest-rank
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    static String us(long nanos) {
        return Long.toString(Math.round(nanos / 1000.0));
    }

    static String latencySummary(long[] sorted) {
        return "latency us p50 " + us(percentile(sorted, 50))
                + " p90 " + us(percentile(sorted, 90))
                + " p99 " + us(percentile(sorted, 99))
                + " max " + us(sorted.length == 0 ? 0 : sorted[sorted.length - 1]);
    }

    // ---- argument parsing ----
    static String arg(String[] args, String name, String def) {
        for (int i = 0; i < args.length - 1; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return def;
    }

    static void usage() {
        System.err.println("usage: ZkSetDataBench --connect H:P[,H:P...] [--clients N] [--outstanding K]\n"
                + "         [--seconds S] [--warmup W] [--value-bytes B] [--label TEXT]\n"
                + "         [--cpu-pids name=pid,...] [--clk-tck HZ] [--session-timeout-ms MS]\n"
                + "       ZkSetDataBench fsync-probe DIR COUNT [BYTES]");
        System.exit(2);
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 1 && args[0].equals("fsync-probe")) {
            if (args.length < 3) {
                usage();
            }
            fsyncProbe(Paths.get(args[1]), Integer.parseInt(args[2]),
                    args.length > 3 ? Integer.parseInt(args[3]) : 4096);
            return;
        }
        String connect = arg(args, "--connect", null);
        if (connect == null) {
            usage();
        }
        int nClients = Integer.parseInt(arg(args, "--clients", "16"));
        int outstanding = Integer.parseInt(arg(args, "--outstanding", "1"));
        double seconds = Double.parseDouble(arg(args, "--seconds", "10"));
        double warmup = Double.parseDouble(arg(args, "--warmup", "2"));
        int valueBytes = Integer.parseInt(arg(args, "--value-bytes", "64"));
        String label = arg(args, "--label", "zookeeper");
        String cpuPidsArg = arg(args, "--cpu-pids", "");
        int clkTck = Integer.parseInt(arg(args, "--clk-tck", "100"));
        int sessionTimeoutMs = Integer.parseInt(arg(args, "--session-timeout-ms", "30000"));
        String root = arg(args, "--root", "/zkbench");
        if (nClients < 1 || outstanding < 1 || seconds <= 0 || warmup < 0 || valueBytes < 0) {
            usage();
        }

        String[] hosts = connect.split(",");
        byte[] value = new byte[valueBytes];
        new Random(42).nextBytes(value);

        // -- connect all sessions, round-robin over the members --
        List<Client> clients = new ArrayList<>();
        for (int i = 0; i < nClients; i++) {
            Client c = new Client(i, hosts[i % hosts.length].trim(), root + "/c" + i, value);
            c.connect(sessionTimeoutMs);
            clients.add(c);
        }
        for (Client c : clients) {
            if (!c.connected.await(60, TimeUnit.SECONDS)) {
                throw new IllegalStateException("client " + c.id + " did not connect to " + c.host);
            }
        }

        // -- one znode per client --
        try {
            clients.get(0).zk.create(root, new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        } catch (KeeperException.NodeExistsException e) {
            // left from an earlier run against the same ensemble
        }
        for (Client c : clients) {
            try {
                c.zk.create(c.path, value, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
            } catch (KeeperException.NodeExistsException e) {
                // same
            }
        }

        // -- CPU accounting: this JVM plus the pids given --
        List<String> cpuNames = new ArrayList<>();
        List<Long> cpuPids = new ArrayList<>();
        cpuNames.add("client");
        cpuPids.add(ProcessHandle.current().pid());
        if (!cpuPidsArg.isEmpty()) {
            for (String kv : cpuPidsArg.split(",")) {
                String[] p = kv.split("=");
                cpuNames.add(p[0]);
                cpuPids.add(Long.parseLong(p[1]));
            }
        }
        long[] pids = cpuPids.stream().mapToLong(Long::longValue).toArray();

        // -- load --
        phase = WARMUP;
        List<Thread> threads = new ArrayList<>();
        if (outstanding == 1) {
            for (Client c : clients) {
                Thread t = new Thread(c::runSync, "bench-" + c.id);
                t.setDaemon(true);
                threads.add(t);
                t.start();
            }
        } else {
            for (Client c : clients) {
                for (int k = 0; k < outstanding; k++) {
                    c.issue();
                }
            }
        }

        Thread.sleep((long) (warmup * 1000));
        CpuSample cpu0 = sampleCpu(pids);
        long t0 = System.nanoTime();
        phase = MEASURE;
        Thread.sleep((long) (seconds * 1000));
        phase = STOP;
        long t1 = System.nanoTime();
        CpuSample cpu1 = sampleCpu(pids);

        // -- drain --
        long drainDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        for (Thread t : threads) {
            t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(drainDeadline - System.nanoTime())));
        }
        for (Client c : clients) {
            while (c.inflight.get() > 0 && System.nanoTime() < drainDeadline) {
                Thread.sleep(1);
            }
        }

        // -- results --
        int total = 0;
        for (Client c : clients) {
            total += c.lat.n;
        }
        long[] all = new long[total];
        int off = 0;
        for (Client c : clients) {
            System.arraycopy(c.lat.a, 0, all, off, c.lat.n);
            off += c.lat.n;
        }
        Arrays.sort(all);
        double window = (t1 - t0) / 1e9;
        System.out.println(String.format(Locale.ROOT,
                "%s, %d clients x %d outstanding, %d B setData: %d ops in %.2f s = %.0f ops/s, %s",
                label, nClients, outstanding, valueBytes, total, window, total / window,
                latencySummary(all)));

        StringBuilder cpu = new StringBuilder("cpu in window (cores; 1.00 = one vCPU busy):");
        double wallTicks = window * clkTck;
        for (int i = 0; i < pids.length; i++) {
            long a = cpu0.procTicks[i], b = cpu1.procTicks[i];
            cpu.append(' ').append(cpuNames.get(i)).append(' ')
                    .append(a < 0 || b < 0 ? "n/a" : String.format(Locale.ROOT, "%.2f", (b - a) / wallTicks));
        }
        if (cpu0.machineTotal >= 0 && cpu1.machineTotal >= 0) {
            double dt = cpu1.machineTotal - cpu0.machineTotal;
            double idle = cpu1.machineIdle - cpu0.machineIdle;
            double iow = cpu1.machineIowait - cpu0.machineIowait;
            int ncpu = Runtime.getRuntime().availableProcessors();
            double busy = dt <= 0 ? 0.0 : (dt - idle - iow) / dt * ncpu;
            double ours = 0;
            for (int i = 0; i < pids.length; i++) {
                if (cpu0.procTicks[i] >= 0 && cpu1.procTicks[i] >= 0) {
                    ours += (cpu1.procTicks[i] - cpu0.procTicks[i]) / wallTicks;
                }
            }
            // "rest": everything else, kernel threads doing our I/O and other processes
            cpu.append(String.format(Locale.ROOT, "; machine busy %.2f of %d, rest %.2f, iowait %.2f",
                    busy, ncpu, Math.max(0.0, busy - ours), dt <= 0 ? 0.0 : iow / dt * ncpu));
        }
        System.out.println(cpu);
        System.out.println("errors: " + errors.get() + (firstError == null ? "" : " (first: " + firstError + ")"));

        for (Client c : clients) {
            try {
                c.zk.close(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        System.exit(errors.get() == 0 ? 0 : 1);
    }

    // ---- fdatasync probe ----
    static void fsyncProbe(Path dir, int count, int bytes) throws IOException {
        Path f = dir.resolve("fsync-probe.dat");
        byte[] block = new byte[bytes];
        new Random(7).nextBytes(block);
        ByteBuffer buf = ByteBuffer.wrap(block);
        long[] lat = new long[count];
        long start, end;
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE, StandardOpenOption.APPEND)) {
            start = System.nanoTime();
            for (int i = 0; i < count; i++) {
                long t0 = System.nanoTime();
                buf.clear();
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(false); // fdatasync(2)
                lat[i] = System.nanoTime() - t0;
            }
            end = System.nanoTime();
        } finally {
            Files.deleteIfExists(f);
        }
        Arrays.sort(lat);
        double secs = (end - start) / 1e9;
        System.out.println(String.format(Locale.ROOT,
                "fdatasync probe: %d x (%d B append + fdatasync) in %s: %.0f /s, %s",
                count, bytes, dir, count / secs, latencySummary(lat)));
    }
}
