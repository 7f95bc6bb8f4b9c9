"""Compact tiers (DESIGN §6): lawful format-shifted copies of the long tail.

`sourcefacts` records what the sources say (durations, IA's lossy derivatives), `encoder`
is the Opus encoder, `comments` the copy's tags, `run` the stage itself (`compact(mirror)`),
`estimate` what a compact tier weighs before its copies exist.
"""
