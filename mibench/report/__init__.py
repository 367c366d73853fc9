"""Reports of a finished run: result rows, the leaderboard, figures."""
