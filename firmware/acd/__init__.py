"""The ACD: skills queues, agents, announcements, VIP, sticky agent, callback, queue log and reports.

`core.Acd` is a sans-I/O decision core: call control feeds it what happened (a caller entered, an agent
answered, a key was pressed) with the current time, and it answers with actions (ring this agent,
connect, announce position, leave to overflow) and writes the Asterisk-compatible queue log.
"""
