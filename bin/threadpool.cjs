// Preloaded with `node -r` (npm start, the Dockerfile, the systemd unit, the bench): libuv reads
// UV_THREADPOOL_SIZE once, when its pool first starts, which in an ES module entry is before any
// of our code runs. Password hashing runs on that pool; one thread per core lets logins reach the
// hash rate without a queue of threads fighting the event loop for the cores.
//
// In a login storm those threads still want the same cores as the event loop, and a token
// verification would wait behind a hash for its time slice. So the pool's threads run nicer than
// the loop (on Linux the nice value is per thread): the loop takes a core the moment it has work,
// and hashing still gets every cycle the loop leaves idle.
const fs = require('node:fs');
const os = require('node:os');

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, os.availableParallelism()));

/** How much nicer than the event loop the pool's threads run (0 leaves them alone; nice tops out at 19). */
const POOL_NICENESS = Number(process.env.LATCHKEY_POOL_NICENESS ?? 10);

const tasks = () => fs.readdirSync('/proc/self/task');
if (POOL_NICENESS > 0 && fs.existsSync('/proc/self/task')) {
  // libuv starts every pool thread at once, on the pool's first job: the threads that appear
  // across this first job are the pool's, and nothing else starts threads while it runs.
  const before = new Set(tasks());
  fs.stat(__filename, () => {
    for (const tid of tasks()) {
      if (before.has(tid)) continue;
      try {
        // Relative to the process's own nice value (a unit file's Nice=, say), never above it.
        os.setPriority(Number(tid), Math.min(19, os.getPriority() + POOL_NICENESS));
      } catch {
        // A thread that has already ended, or a system that refuses: hashing just runs unniced.
      }
    }
  });
}
