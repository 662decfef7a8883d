/* Freestanding stub: SQLite has its own ctype tables; nothing here is called. */
