from enricher.cli import main

raise SystemExit(main())
