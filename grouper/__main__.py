from grouper.cli import main

raise SystemExit(main())
