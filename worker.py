"""The Release Warden worker: `python worker.py` (or `warden worker`).

It wires every activity (with its clients) and every workflow onto the task queue; the wiring
lives in `warden.runtime.worker`. Many workers may poll the same task queue against a real
Temporal cluster; each needs the same settings (flag backend, audit database, Prometheus,
webhooks).
"""

from warden.runtime.worker import main

if __name__ == "__main__":
    main()
