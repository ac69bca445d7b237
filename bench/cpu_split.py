"""Where a process's CPU goes, from perf's samples: the kernel's paths of a loopback send, by name.

    perf record -F 999 -g -p <pid> -o web.data -- sleep 10      # e.g. web A during bench/crowd_live.py's phase 2
    perf script -i web.data | python bench/cpu_split.py [--per-update 8.4]

Each sample goes to the innermost frame of its kernel call chain that names one of the paths below (so a sample
in a spin unlock under try_to_wake_up counts as waking a reader), else to its leaf's library: the Python
interpreter, uvloop, libc. `--per-update` splits a measured figure (bench/crowd_live.py's µs per update) by
those shares. The user-space stacks of CPython 3.11 and uvloop have no frame pointers, so which Python code ran
is not told here (py-spy --native is for that); a sample's share is its share of CPU time only as far as the
sampling clock is fair: with cpu-clock in a VM, samples taken while interrupts were off land where they come
back on (the unlock that ends try_to_wake_up's section, finish_task_switch).

Without CONFIG_IRQ_TIME_ACCOUNTING (the development machine: `zcat /proc/config.gz | grep IRQ_TIME`) the
softirqs that run while the process is on the CPU are billed to it, in /proc/<pid>/stat as in these samples: on
loopback the receiving socket's TCP input, run from the sender's own write, and any timer that fires meanwhile.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator

Frame = tuple[str, str]  # symbol, library

# Checked at each frame from the leaf up; the first that matches names the sample's path.
PATHS: list[tuple[str, re.Pattern[str]]] = [
    ("waking the reader (sock_def_readable → epoll → try_to_wake_up, IPI)", re.compile(
        r"(try_to_wake_up|ttwu_|__wake_up|ep_poll_callback|sock_def_readable|default_wake_function|"
        r"autoremove_wake_function|select_task_rq|enqueue_task|activate_task|__smp_call_single_queue|"
        r".*send_IPI|native_send_call_func)")),
    ("timers (delayed ACK, retransmit, tick)", re.compile(
        r"(run_timer_softirq|__run_timers|call_timer_fn|tcp_delack_timer|tcp_write_timer|tcp_keepalive_timer|"
        r"inet_csk_reset_xmit_timer|hrtimer_interrupt|__sysvec_apic_timer_interrupt|tick_sched|"
        r"update_process_times|sk_reset_timer|mod_timer|__mod_timer)")),
    ("ACKs (sent by the reader in our softirq, or processed for our socket)", re.compile(
        r"(tcp_ack|tcp_send_ack|__tcp_send_ack|__tcp_ack_snd_check|tcp_clean_rtx_queue|tcp_send_delayed_ack|"
        r"tcp_rearm_rto|__release_sock|tcp_v4_do_rcv)")),
    ("loopback receive (tcp_v4_rcv and below, for the reader's socket)", re.compile(
        r"(tcp_v4_rcv|tcp_rcv_established|tcp_data_queue|tcp_queue_rcv|ip_rcv|ip_local_deliver|"
        r"ip_protocol_deliver_rcu|ip_sublist_rcv|ip_list_rcv|__netif_receive_skb|process_backlog|net_rx_action|"
        r"__napi_poll|tcp_event_data_recv|tcp_v4_early_demux|__inet_lookup|skb_try_coalesce|tcp_add_backlog|"
        r"sk_filter|tcp_filter|netif_receive_skb|tcp_rcv_space_adjust|tcp_measure_rcv_mss)")),
    ("IP output and loopback transmit", re.compile(
        r"(loopback_xmit|dev_hard_start_xmit|__dev_queue_xmit|ip_finish_output|ip_output|ip_queue_xmit|"
        r"__ip_queue_xmit|__ip_local_out|ip_local_out|netif_rx|enqueue_to_backlog|neigh_|__netif_rx|"
        r"__dev_xmit_skb|validate_xmit)")),
    ("softirq entry", re.compile(r"(__do_softirq|do_softirq|__local_bh_enable_ip|handle_softirqs|irq_exit)")),
    ("TCP send (tcp_sendmsg .. tcp_transmit_skb)", re.compile(
        r"(tcp_sendmsg|tcp_write_xmit|__tcp_transmit_skb|tcp_transmit_skb|__tcp_push_pending_frames|tcp_push|"
        r"tcp_stream_alloc_skb|sk_stream_alloc|skb_copy_to_page|tcp_event_new_data_sent|tcp_skb_entail|"
        r"sk_page_frag|__sk_mem|mem_cgroup_charge_skmem|tcp_established_options|tcp_options_write|"
        r"tcp_small_queue|tcp_v4_send_check|__tcp_v4_send_check|tcp_rate_|tcp_update_skb_after_send|skb_clone|"
        r"__skb_clone|lock_sock|release_sock|sock_sendmsg|inet_sendmsg|__sock_sendmsg|inet_send_prepare)")),
    ("socket reads (tcp_recvmsg)", re.compile(r"(tcp_recvmsg|sock_recvmsg|sock_read_iter|inet_recvmsg)")),
    ("epoll_wait and being switched back in (finish_task_switch)", re.compile(
        r"(do_epoll_wait|ep_poll|__x64_sys_epoll|schedule|__schedule|finish_task_switch|pick_next_task)")),
    ("system call entry and exit, vfs_write", re.compile(
        r"(entry_SYSCALL|do_syscall_64|syscall_exit|__x64_sys_write|ksys_write|vfs_write|sock_write_iter|"
        r"syscall_return|exit_to_user_mode|fdget|__fget|fput|rw_verify_area|new_sync_write)")),
]
_FRAME = re.compile(r"\s*[0-9a-f]+ (.*?)(?:\+0x[0-9a-f]+)? \((.*)\)$")


def samples(lines: Iterable[str]) -> Iterator[list[Frame]]:
    """perf script's default output: a header line per sample, then its frames (leaf first), a blank line."""
    frames: list[Frame] | None = None
    for line in lines:
        if not line.strip():
            if frames is not None:
                yield frames
            frames = None
        elif not line[0].isspace():
            frames = []
        elif frames is not None:
            match = _FRAME.match(line)
            frames.append((match.group(1), match.group(2)) if match else (line.strip(), "?"))
    if frames is not None:
        yield frames


def path_of(frames: list[Frame]) -> str:
    for symbol, _ in frames:
        for name, pattern in PATHS:
            if pattern.match(symbol):
                return name
    symbol, library = frames[0] if frames else ("?", "?")
    if "kernel" in library:
        return "kernel, other"
    for part, name in (("uvloop", "uvloop"), ("python", "the Python interpreter"), ("libc", "libc")):
        if part in library:
            return name
    return f"other ({library.rsplit('/', 1)[-1]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-update", type=float, default=0.0, help="a measured µs per update to split")
    args = parser.parse_args()
    counts: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {}
    for frames in samples(sys.stdin):
        name = path_of(frames)
        counts[name] += 1
        leaves.setdefault(name, Counter())[frames[0][0] if frames else "?"] += 1
    total = sum(counts.values())
    print(f"{total} samples")
    for name, n in counts.most_common():
        split = f"  {args.per_update * n / total:5.2f} µs" if args.per_update else ""
        top = ", ".join(f"{symbol} {k / n:.0%}" for symbol, k in leaves[name].most_common(3))
        print(f"  {n / max(1, total):6.1%}{split}  {name}   [{top}]")


if __name__ == "__main__":
    main()
