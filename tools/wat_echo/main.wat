;; wat_echo: a clawbox tool written directly in WebAssembly text, to show
;; the ABI without any SDK. It reads all of stdin (the params as compact
;; JSON) with fd_read, logs one line through clawbox.host_call ("log"),
;; and writes {"tool":"wat_echo","echo":<params>} with fd_write.
;;
;; Memory map: 0..16 iovec and counters, 16.. constant strings,
;; 1024..2048 host_call response buffer, 65536.. the input (grown a page at
;; a time as needed).
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "clawbox" "host_call"
    (func $host_call (param i32 i32 i32 i32) (result i32)))

  (memory (export "memory") 2)

  (data (i32.const 16) "{\"tool\":\"wat_echo\",\"echo\":")   ;; 26 bytes
  (data (i32.const 96) "}\n")                          ;; 2 bytes
  (data (i32.const 112) "null")                         ;; 4 bytes
  (data (i32.const 128) "{\"error\":\"input too large\"}\n") ;; 28 bytes
  (data (i32.const 256) "{\"method\":\"log\",\"params\":{\"level\":\"info\",\"message\":\"wat_echo: hello from WebAssembly text\"}}") ;; 92 bytes

  ;; Writes len bytes at ptr to stdout, looping over short writes.
  ;; Returns 0, or the WASI errno.
  (func $write (param $ptr i32) (param $len i32) (result i32)
    (local $err i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (local.set $err (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (if (local.get $err) (then (return (local.get $err))))
        (if (i32.eqz (i32.load (i32.const 8))) (then (return (i32.const 29))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more)))
    (i32.const 0))

  ;; Reads stdin to 65536.. until end of file. Returns the byte count, or
  ;; -1 when memory cannot grow.
  (func $read_all (result i32)
    (local $end i32)
    (local $room i32)
    (local.set $end (i32.const 65536))
    (block $eof
      (loop $more
        (local.set $room
          (i32.sub (i32.mul (memory.size) (i32.const 65536)) (local.get $end)))
        (if (i32.lt_u (local.get $room) (i32.const 4096))
          (then
            (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
              (then (return (i32.const -1))))
            (br $more)))
        (i32.store (i32.const 0) (local.get $end))
        (i32.store (i32.const 4) (local.get $room))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $eof (i32.eqz (i32.load (i32.const 8))))
        (local.set $end (i32.add (local.get $end) (i32.load (i32.const 8))))
        (br $more)))
    (i32.sub (local.get $end) (i32.const 65536)))

  (func (export "_start")
    (local $n i32)
    (local.set $n (call $read_all))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then
        (drop (call $write (i32.const 128) (i32.const 28)))
        (return)))
    ;; The log call's answer ({"ok":null}) is not needed.
    (drop (call $host_call (i32.const 256) (i32.const 92) (i32.const 1024) (i32.const 1024)))
    (drop (call $write (i32.const 16) (i32.const 26)))
    (if (i32.eqz (local.get $n))
      (then (drop (call $write (i32.const 112) (i32.const 4))))
      (else (drop (call $write (i32.const 65536) (local.get $n)))))
    (drop (call $write (i32.const 96) (i32.const 2)))))
