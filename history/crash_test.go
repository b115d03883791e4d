package history

const crashChildEnv = "HISTORY_CRASH_CHILD_DIR"

func crashChild() {}
