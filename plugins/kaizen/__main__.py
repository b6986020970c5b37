from kaizen.cli import main

raise SystemExit(main())
