// The network device API: a virtual interface (netfront over Xen's netif
// protocol) that sends and receives Ethernet frames. No IP here: a TCP/IP stack
// or a test app builds on it.
//
//   const o = sched.wait(net.open());              // the first vif
//   if (!o.ok) panic(o.error);
//   const dev = o.device!;
//   console.log(dev.macText + " mtu " + dev.mtu.toString());
//   sched.wait(dev.send(frame));                   // resolves when the backend took it
//   const rx = dev.receive();
//   sched.wait(sched.timeout(rx, time.NS_PER_S));
//   if (rx.ok) handle(rx.frame!);                  // or dev.onFrame(handler): called per frame
//   sched.wait(dev.close());
//
// send() copies the frame (14 to 65535 bytes) before it returns; the op
// resolves when the backend has answered every slot, and rejects with the
// reason ("vif 0: a frame of 9014 bytes needs 3 slots, but the backend offers
// no feature-sg ..."). When the TX ring is full, frames wait in a queue of
// txQueueMax (512); beyond it send() is refused at once: wait for writable()
// (back-pressure). Received frames go to the handler if one is set, else to
// receive() waits, else to a queue of 1024 (more are dropped, counted in
// rxDropped). A frame with `csumBlank` set came from dom0's own stack with its
// TCP/UDP checksum left blank: fill it with fillChecksum() or do not check it.
//
// Failures (netfront.ts): a backend that breaks the protocol, loses a frame for
// requestTimeoutNs (30 s) or leaves Connected fails the device: every pending
// op rejects with the reason, and later ones are refused at once. close() drains
// what is in flight, closes the device (xenbus Closing → Closed), and gives every
// page and grant back.
import * as abi from "../abi";
import { Future, Task, spawn } from "../sched";
import { Xenstore, XsReply } from "../xen/xenstore";
import * as xenstore from "../xen/xenstore";
import { Frame, FrameHandler, Netfront, RecvOp, TxOp } from "./netfront";
import { Connect, Disconnect, Info, OpenOptions } from "./netfront-xs";
import * as checksum from "./checksum";
import * as n from "./netif";

export { Frame, FrameHandler, RecvOp, TxOp } from "./netfront";
export { Info, OpenOptions } from "./netfront-xs";

/** NETTXF_csum_blank: send() leaves the TCP/UDP checksum to the backend (the field holds the pseudo-header sum). */
export const TX_CSUM_BLANK: u16 = n.NETTXF_CSUM_BLANK;
/** NETTXF_data_validated: the frame's checksums are known good. */
export const TX_DATA_VALIDATED: u16 = n.NETTXF_DATA_VALIDATED;
/** The largest frame (XEN_NETIF_MAX_TX_SIZE). */
export const MAX_FRAME: i32 = n.MAX_FRAME;

export class Device {
  constructor(
    public front: Netfront,
    private connect: Connect,
  ) {}

  info(): Info {
    return this.connect.info;
  }

  /** "vif 0". */
  get name(): string {
    return this.front.name;
  }

  /** The MAC address, 6 bytes (a copy). */
  get mac(): Uint8Array {
    const m = new Uint8Array(6);
    for (let i = 0; i < 6; i++) m[i] = this.connect.info.mac[i];
    return m;
  }

  /** The MAC address as the toolstack wrote it, in lower case: "00:16:3e:12:34:56". */
  get macText(): string {
    return this.connect.info.macText;
  }

  /** The largest IP packet (frames are 14 bytes longer). */
  get mtu(): i32 {
    return this.connect.info.mtu;
  }

  /** Sends one frame, copied before this returns; flags: TX_CSUM_BLANK, TX_DATA_VALIDATED. */
  send(frame: Uint8Array, flags: u16 = 0): TxOp {
    return this.front.sendFrom(frame.dataStart, frame.length, flags);
  }

  /** Sends the len bytes at ptr as one frame (copied before this returns). */
  sendFrom(ptr: usize, len: i32, flags: u16 = 0): TxOp {
    return this.front.sendFrom(ptr, len, flags);
  }

  /** Resolves when no frame waits for ring slots: send more then (back-pressure). */
  writable(): Future {
    return this.front.writable();
  }

  /** Frames waiting for ring slots. */
  queued(): i32 {
    return this.front.queued();
  }

  /** The next received frame (op.frame once resolved); at once if one is waiting. */
  receive(): RecvOp {
    return this.front.receive();
  }

  /** Frames received and not yet taken by receive(). */
  pending(): i32 {
    return this.front.pending();
  }

  /** Hands every frame to h, in the event loop: those already queued at once, then each as it arrives (null: back to receive()). */
  onFrame(h: FrameHandler | null): void {
    this.front.setHandler(h);
  }

  /** Set when the device failed (or closed): why. */
  get broken(): string {
    return this.front.broken;
  }

  /** Waits for the frames in flight, then disconnects and gives back every page and grant. */
  close(): Future {
    return spawn(new Disconnect(this.front, this.connect.fe, this.connect.opts.unmapTimeoutNs));
  }
}

/** The result of open(): `device` once resolved. */
export class OpenOp extends Task {
  device: Device | null = null;
  stage: i32 = 0;
  list: XsReply | null = null;
  connect: Connect | null = null;
  constructor(
    public xs: Xenstore,
    public opts: OpenOptions,
  ) {
    super();
  }
  step(): void {
    const a = this.awaited;
    let devid = this.opts.devid;
    if (this.stage == 0 && devid == "") {
      this.stage = 1;
      this.await((this.list = this.xs.directory("device/vif")));
      return;
    }
    if (this.stage == 1) {
      const l = this.list!;
      if (!l.ok && l.errno != abi.ENOENT && l.errno != abi.EACCES) return this.fail("net: listing the network interfaces: " + l.error);
      const ids = l.ok ? l.list() : new Array<string>();
      if (ids.length == 0) return this.fail("net: no network interface — is there a vif line in the xl config?");
      // The lowest device number is the first interface (eth0).
      let best = ids[0];
      for (let k = 1; k < ids.length; k++) if (I64.parseInt(ids[k]) < I64.parseInt(best)) best = ids[k];
      devid = best;
    }
    if (this.stage <= 1) {
      this.stage = 2;
      this.await((this.connect = spawn(new Connect(this.xs, devid, this.opts))));
      return;
    }
    if (a!.failed) return this.fail(a!.error);
    const c = this.connect!;
    this.device = new Device(c.front!, c);
    this.finish();
  }
}

/**
 * Connects to a network interface (opts.devid as in device/vif/<devid>; "" the
 * first one). Every wait has a deadline (opts; defaults: 10 s per xenstore
 * request, 30 s per backend state while connecting, 5 s for the close).
 */
export function open(opts: OpenOptions | null = null): OpenOp {
  return spawn(new OpenOp(xenstore.open(), opts ? opts : new OpenOptions()));
}

/**
 * Fills the TCP or UDP checksum of an unfragmented IPv4 frame (a csumBlank
 * frame's, or one about to be sent); false, and nothing written, for any other frame.
 */
export function fillChecksum(frame: Uint8Array): bool {
  return checksum.fillChecksum(frame);
}

/**
 * Prepares an IPv4 TCP or UDP frame to be sent with TX_CSUM_BLANK: the checksum
 * field gets the pseudo-header sum, and the backend completes it. False for any other frame.
 */
export function blankChecksum(frame: Uint8Array): bool {
  return checksum.blankChecksumAt(frame.dataStart, frame.length);
}

/** Whether an IPv4 frame's TCP or UDP checksum verifies (false for any other frame). */
export function checksumOk(frame: Uint8Array): bool {
  return checksum.transportChecksumOk(frame.dataStart, frame.length);
}
