module albtestbed.local/pause

go 1.24
