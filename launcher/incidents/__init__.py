"""Incident bundles: the evidence of an unplanned event (a crash, a lost engine, a stall, failed probes, giving
up, an escalation), taken from the live processes before anything is killed, written under
STATE_DIR/incidents/, and read back by `serve-with-monitoring incidents`."""
