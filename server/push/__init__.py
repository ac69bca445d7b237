"""Web Push: VAPID signing (RFC 8292), aes128gcm encoding (RFC 8291) and sending (RFC 8030)."""
