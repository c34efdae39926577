from faceanim.cli import main

raise SystemExit(main())
